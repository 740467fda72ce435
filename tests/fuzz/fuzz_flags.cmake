# Included by the top-level CMakeLists.txt before any target when CAREHUB_FUZZ is ON: every
# translation unit of the build gets libFuzzer coverage instrumentation plus ASan and UBSan, so a
# fuzzer sees (and checks) the project code it drives, not only its own file.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang" OR NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR
    "CAREHUB_FUZZ needs clang with libFuzzer (found ${CMAKE_CXX_COMPILER_ID}); configure with "
    "CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCAREHUB_FUZZ=ON, or run scripts/fuzz.sh")
endif()
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
                    -fno-omit-frame-pointer)
add_link_options(-fsanitize=address,undefined)
