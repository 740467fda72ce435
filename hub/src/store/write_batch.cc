#include "carehub/hub/store/write_batch.h"

#include <rocksdb/write_batch.h>

namespace carehub::hub {

WriteBatch::WriteBatch(size_t reserve_bytes)
    : rep_(std::make_unique<rocksdb::WriteBatch>(reserve_bytes)) {}

WriteBatch::~WriteBatch() = default;

void WriteBatch::Clear() { rep_->Clear(); }

size_t WriteBatch::DataSize() const { return rep_->GetDataSize(); }

uint32_t WriteBatch::Count() const { return rep_->Count(); }

rocksdb::WriteBatch* RocksBatch(WriteBatch* batch) { return batch->rep_.get(); }

}  // namespace carehub::hub
