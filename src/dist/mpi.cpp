#include "dist/mpi.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <stdexcept>

namespace ts::mpi {

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw std::runtime_error(std::string(what) + ": " + std::string(msg, static_cast<size_t>(len)));
}

namespace {
int g_provided = MPI_THREAD_SINGLE;
}

bool thread_multiple() { return g_provided >= MPI_THREAD_MULTIPLE; }

Env::Env(int* argc, char*** argv) {
  check(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &g_provided), "MPI_Init_thread");
  // Errors in MPI calls come back as return codes and become exceptions (then abort_world), so the
  // failing rank logs what failed before the job ends.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

Env::~Env() {
  if (active()) MPI_Finalize();
}

bool active() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init != 0 && fin == 0;
}

void abort_world(int code) {
  spdlog::default_logger()->flush();
  if (active()) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

Comm::~Comm() {
  if (comm_ != MPI_COMM_NULL && active() && std::uncaught_exceptions() == 0) MPI_Comm_free(&comm_);
}

Comm& Comm::operator=(Comm&& o) noexcept {
  if (this != &o) {
    if (comm_ != MPI_COMM_NULL && active()) MPI_Comm_free(&comm_);
    comm_ = o.comm_;
    o.comm_ = MPI_COMM_NULL;
  }
  return *this;
}

Comm Comm::dup(MPI_Comm parent) {
  MPI_Comm c = MPI_COMM_NULL;
  check(MPI_Comm_dup(parent, &c), "MPI_Comm_dup");
  MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
  return Comm(c);
}

Comm Comm::split(int color, int key) const {
  MPI_Comm c = MPI_COMM_NULL;
  check(MPI_Comm_split(comm_, color, key, &c), "MPI_Comm_split");
  MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
  return Comm(c);
}

Comm Comm::split_shared() const {
  MPI_Comm c = MPI_COMM_NULL;
  check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank(), MPI_INFO_NULL, &c), "MPI_Comm_split_type");
  MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
  return Comm(c);
}

int Comm::rank() const {
  int r = 0;
  check(MPI_Comm_rank(comm_, &r), "MPI_Comm_rank");
  return r;
}

int Comm::size() const {
  int n = 0;
  check(MPI_Comm_size(comm_, &n), "MPI_Comm_size");
  return n;
}

int64_t Comm::allreduce_max(int64_t v) const {
  int64_t out = 0;
  check(MPI_Allreduce(&v, &out, 1, MPI_INT64_T, MPI_MAX, comm_), "MPI_Allreduce(max)");
  return out;
}

int64_t Comm::allreduce_min(int64_t v) const {
  int64_t out = 0;
  check(MPI_Allreduce(&v, &out, 1, MPI_INT64_T, MPI_MIN, comm_), "MPI_Allreduce(min)");
  return out;
}

int64_t Comm::allreduce_sum(int64_t v) const {
  int64_t out = 0;
  check(MPI_Allreduce(&v, &out, 1, MPI_INT64_T, MPI_SUM, comm_), "MPI_Allreduce(sum)");
  return out;
}

void Comm::allreduce_sum(std::span<double> values) const {
  check(MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE, MPI_SUM, comm_),
        "MPI_Allreduce(sum, double)");
}

void Comm::allreduce_sum(std::span<float> values) const {
  check(MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_FLOAT, MPI_SUM, comm_),
        "MPI_Allreduce(sum, float)");
}

void Comm::allreduce_sum(std::span<int64_t> values) const {
  check(MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_INT64_T, MPI_SUM, comm_),
        "MPI_Allreduce(sum, int64)");
}

void Comm::allreduce_max_inplace(std::span<int64_t> values) const {
  check(MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_INT64_T, MPI_MAX, comm_),
        "MPI_Allreduce(max, int64)");
}

int64_t Comm::exscan_sum(int64_t v) const {
  int64_t out = 0;
  check(MPI_Exscan(&v, &out, 1, MPI_INT64_T, MPI_SUM, comm_), "MPI_Exscan");
  return rank() == 0 ? 0 : out;  // MPI leaves rank 0's result undefined
}

std::vector<int64_t> Comm::allgather(int64_t v) const {
  std::vector<int64_t> out(static_cast<size_t>(size()));
  check(MPI_Allgather(&v, 1, MPI_INT64_T, out.data(), 1, MPI_INT64_T, comm_), "MPI_Allgather");
  return out;
}

void Comm::bcast(std::string& s, int root) const {
  int64_t n = static_cast<int64_t>(s.size());
  check(MPI_Bcast(&n, 1, MPI_INT64_T, root, comm_), "MPI_Bcast(size)");
  s.resize(static_cast<size_t>(n));
  if (n > 0) check(MPI_Bcast(s.data(), static_cast<int>(n), MPI_CHAR, root, comm_), "MPI_Bcast(string)");
}

void Comm::bcast(std::span<int64_t> values, int root) const {
  check(MPI_Bcast(values.data(), static_cast<int>(values.size()), MPI_INT64_T, root, comm_), "MPI_Bcast(int64)");
}

std::vector<std::string> Comm::gather_strings(const std::vector<std::string>& local, int root) const {
  // Flatten as [count, len0, len1, ...] + bytes, gather the sizes, then gatherv both.
  std::vector<int64_t> lens;
  std::string bytes;
  for (const auto& s : local) {
    lens.push_back(static_cast<int64_t>(s.size()));
    bytes += s;
  }
  const int n = size();
  const int me = rank();
  int counts[2] = {static_cast<int>(lens.size()), static_cast<int>(bytes.size())};
  std::vector<int> all_counts(me == root ? 2 * static_cast<size_t>(n) : 0);
  check(MPI_Gather(counts, 2, MPI_INT, all_counts.data(), 2, MPI_INT, root, comm_), "MPI_Gather(counts)");
  std::vector<int> len_counts, len_displs, byte_counts, byte_displs;
  int64_t total_lens = 0, total_bytes = 0;
  if (me == root) {
    for (int r = 0; r < n; ++r) {
      len_counts.push_back(all_counts[2 * static_cast<size_t>(r)]);
      byte_counts.push_back(all_counts[2 * static_cast<size_t>(r) + 1]);
      len_displs.push_back(static_cast<int>(total_lens));
      byte_displs.push_back(static_cast<int>(total_bytes));
      total_lens += len_counts.back();
      total_bytes += byte_counts.back();
    }
  }
  std::vector<int64_t> all_lens(static_cast<size_t>(total_lens));
  std::string all_bytes(static_cast<size_t>(total_bytes), '\0');
  check(MPI_Gatherv(lens.data(), counts[0], MPI_INT64_T, all_lens.data(), len_counts.data(), len_displs.data(), MPI_INT64_T, root, comm_),
        "MPI_Gatherv(lengths)");
  check(MPI_Gatherv(bytes.data(), counts[1], MPI_CHAR, all_bytes.data(), byte_counts.data(), byte_displs.data(), MPI_CHAR, root, comm_),
        "MPI_Gatherv(bytes)");
  std::vector<std::string> out;
  if (me != root) return out;
  size_t at = 0;
  for (int64_t len : all_lens) {
    out.push_back(all_bytes.substr(at, static_cast<size_t>(len)));
    at += static_cast<size_t>(len);
  }
  return out;
}

void Comm::barrier() const { check(MPI_Barrier(comm_), "MPI_Barrier"); }

}  // namespace ts::mpi
