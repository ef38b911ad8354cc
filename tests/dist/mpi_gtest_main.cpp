// main() for GoogleTest binaries run under mpiexec: MPI is initialised around the tests, only rank 0
// prints results, and the exit status is the same on every rank (a failure on any rank fails all).
#include <gtest/gtest.h>
#include <mpi.h>

#include "dist/mpi.h"

int main(int argc, char** argv) {
  ts::mpi::Env env(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0, any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (failed && rank != 0) fprintf(stderr, "[rank %d] tests FAILED\n", rank);  // only rank 0 prints results
  return any;
}
