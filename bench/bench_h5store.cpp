// Parallel HDF5 write bandwidth against a plain sequential write of the same bytes, in one run.
//
// HDF5 side (every rank, the pattern `collect` uses): one ParallelFile with --datasets datasets of
// [rows, cols] float32; in each of --rounds rounds every rank writes its next slice of its contiguous
// block of rows into every dataset (one collective write per dataset), then the file is closed and
// fsynced. Plain side (rank 0 alone): the same bytes with pwrite() at the same offsets of one flat
// file in the same number of pieces, then fsync. Prints one JSON line (rank 0).
//   mpiexec -n 2 build/bin/bench_h5store --rows 65536 --cols 768 --datasets 12 --rounds 16 --dir /tmp
#include <fcntl.h>
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "dist/mpi.h"
#include "io/h5store.h"

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

void fsync_file(const std::filesystem::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

int main(int argc, char** argv) {
  ts::mpi::Env env(&argc, &argv);
  int64_t rows = 65536, cols = 768, datasets = 12, rounds = 16;
  std::string dir = "/tmp";
  bool plain_first = false;  // alternate the order between runs: the page cache favours whoever goes second
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--rows") rows = std::stoll(v);
    else if (k == "--cols") cols = std::stoll(v);
    else if (k == "--datasets") datasets = std::stoll(v);
    else if (k == "--rounds") rounds = std::stoll(v);
    else if (k == "--dir") dir = v;
    else if (k == "--plain-first") plain_first = v == "1";
  }
  ts::mpi::Comm comm = ts::mpi::Comm::dup(MPI_COMM_WORLD);
  const int rank = comm.rank(), world = comm.size();
  const int64_t block = rows / world, first = rank * block, mine = rank == world - 1 ? rows - first : block;
  const int64_t per_round = (mine + rounds - 1) / rounds;
  std::vector<float> data(static_cast<size_t>(per_round * cols));
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i % 1000) * 0.001f + static_cast<float>(rank);
  const std::filesystem::path h5 = std::filesystem::path(dir) / "bench_h5store.h5";
  const std::filesystem::path flat = std::filesystem::path(dir) / "bench_h5store.bin";
  const double bytes = static_cast<double>(rows) * static_cast<double>(cols) * 4.0 * static_cast<double>(datasets);

  // HDF5, collective.
  auto run_hdf5 = [&] {
    comm.barrier();
    const double t0 = now();
    {
      ts::h5::ParallelFile f(h5, comm.get());
      for (int64_t d = 0; d < datasets; ++d)
        f.create({"/activations/blocks." + std::to_string(d) + ".hook_resid_post", ts::h5::DType::F32, {rows, cols}, {"row", "d_model"}, {}});
      for (int64_t r = 0; r < rounds; ++r) {
        const int64_t begin = first + r * per_round, count = std::max<int64_t>(0, std::min(per_round, first + mine - begin));
        for (int64_t d = 0; d < datasets; ++d)
          f.write_rows("/activations/blocks." + std::to_string(d) + ".hook_resid_post",
                       count > 0 ? std::vector<ts::h5::RowRange>{{begin, count}} : std::vector<ts::h5::RowRange>{}, data.data());
      }
      f.close();
    }
    if (rank == 0) fsync_file(h5);
    comm.barrier();
    return now() - t0;
  };

  // Plain sequential write of the same bytes by one process, same pieces, same offsets.
  auto run_plain = [&]() -> double {
    if (rank != 0) return 0;
    const double t1 = now();
    const int fd = ::open(flat.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    const int64_t slice = per_round * cols * 4;
    std::vector<char> buf(static_cast<size_t>(slice));
    std::memcpy(buf.data(), data.data(), static_cast<size_t>(slice));
    for (int64_t d = 0; d < datasets; ++d)
      for (int64_t w = 0; w < world; ++w) {
        const int64_t w_first = w * block, w_mine = w == world - 1 ? rows - w_first : block;
        for (int64_t r = 0; r < rounds; ++r) {
          const int64_t begin = w_first + r * per_round, count = std::max<int64_t>(0, std::min(per_round, w_first + w_mine - begin));
          if (count <= 0) continue;
          const off_t at = static_cast<off_t>((d * rows + begin) * cols * 4);
          if (::pwrite(fd, buf.data(), static_cast<size_t>(count * cols * 4), at) < 0) return -1;
        }
      }
    ::fsync(fd);
    ::close(fd);
    return now() - t1;
  };
  double t_h5 = 0, t_plain = 0;
  if (plain_first) {
    t_plain = run_plain();
    comm.barrier();
    t_h5 = run_hdf5();
  } else {
    t_h5 = run_hdf5();
    t_plain = run_plain();
  }
  if (t_plain < 0) return 1;
  if (rank == 0) {
    std::printf("{\"ranks\": %d, \"bytes\": %.0f, \"hdf5_s\": %.4f, \"plain_s\": %.4f, \"hdf5_GBps\": %.3f, \"plain_GBps\": %.3f, \"ratio\": %.3f}\n",
                world, bytes, t_h5, t_plain, bytes / t_h5 / 1e9, bytes / t_plain / 1e9, t_plain / t_h5);
    std::filesystem::remove(h5);
    std::filesystem::remove(flat);
  }
  return 0;
}
