// The same point-to-point benchmarks over plain MPI (baseline for bench/p2p/p2p_cohort.cpp):
//   mpirun -n 2 --bind-to core p2p_mpi BENCH BYTES [ITERATIONS [WARMUP]]
// The serialized-struct test uses cereal into a buffer, MPI_Send, and MPI_Probe + MPI_Recv +
// decode on the other side: what a plain-MPI program does to send such a struct.
#include <mpi.h>

#include <sstream>
#include <vector>

#include <cereal/archives/binary.hpp>
#include <cereal/types/string.hpp>

#include "p2p_common.hpp"

using p2p_bench::Args;
using p2p_bench::kWindow;

namespace {

int rank_ = 0;

double latency(const Args& a) {
  std::vector<char> buf(a.bytes, 'a');
  int peer = 1 - rank_;
  int n = static_cast<int>(a.bytes);
  double t0 = 0;
  for (int i = 0; i < a.warmup + a.iterations; ++i) {
    if (i == a.warmup) t0 = p2p_bench::now_us();
    if (rank_ == 0) {
      MPI_Send(buf.data(), n, MPI_CHAR, peer, 1, MPI_COMM_WORLD);
      MPI_Recv(buf.data(), n, MPI_CHAR, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else {
      MPI_Recv(buf.data(), n, MPI_CHAR, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send(buf.data(), n, MPI_CHAR, peer, 1, MPI_COMM_WORLD);
    }
  }
  return (p2p_bench::now_us() - t0) / a.iterations / 2;
}

void send_particle(const p2p_bench::Particle& p, int peer) {
  std::ostringstream os;
  {
    cereal::BinaryOutputArchive ar(os);
    ar(p);
  }
  std::string s = os.str();
  MPI_Send(s.data(), static_cast<int>(s.size()), MPI_CHAR, peer, 1, MPI_COMM_WORLD);
}

void recv_particle(p2p_bench::Particle& p, int peer) {
  MPI_Status st;
  MPI_Probe(peer, 1, MPI_COMM_WORLD, &st);
  int n = 0;
  MPI_Get_count(&st, MPI_CHAR, &n);
  std::string s(static_cast<std::size_t>(n), '\0');
  MPI_Recv(s.data(), n, MPI_CHAR, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  std::istringstream is(s);
  cereal::BinaryInputArchive ar(is);
  ar(p);
}

double latency_cereal(const Args& a) {
  p2p_bench::Particle p = p2p_bench::sample_particle();
  int peer = 1 - rank_;
  double t0 = 0;
  for (int i = 0; i < a.warmup + a.iterations; ++i) {
    if (i == a.warmup) t0 = p2p_bench::now_us();
    if (rank_ == 0) {
      send_particle(p, peer);
      recv_particle(p, peer);
    } else {
      recv_particle(p, peer);
      send_particle(p, peer);
    }
  }
  return (p2p_bench::now_us() - t0) / a.iterations / 2;
}

double struct_over_8b(const Args& a) {
  return p2p_bench::alternating_ratio(a, latency_cereal, latency);
}

double latency_vector(const Args& a) {
  std::vector<double> v(1000, 1.5);
  int peer = 1 - rank_;
  double t0 = 0;
  for (int i = 0; i < a.warmup + a.iterations; ++i) {
    if (i == a.warmup) t0 = p2p_bench::now_us();
    if (rank_ == 0) {
      MPI_Send(v.data(), 1000, MPI_DOUBLE, peer, 1, MPI_COMM_WORLD);
      MPI_Recv(v.data(), 1000, MPI_DOUBLE, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else {
      MPI_Recv(v.data(), 1000, MPI_DOUBLE, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send(v.data(), 1000, MPI_DOUBLE, peer, 1, MPI_COMM_WORLD);
    }
  }
  return (p2p_bench::now_us() - t0) / a.iterations / 2;
}

double windows(const Args& a) {
  // One buffer for the whole window, as OSU's osu_bw and osu_mbw_mr do.
  std::vector<char> buf(a.bytes, 'b');
  std::vector<MPI_Request> reqs(kWindow);
  int peer = 1 - rank_;
  int n = static_cast<int>(a.bytes);
  int ack = 0;
  double t0 = 0;
  for (int i = 0; i < a.warmup + a.iterations; ++i) {
    if (i == a.warmup) t0 = p2p_bench::now_us();
    if (rank_ == 0) {
      for (int w = 0; w < kWindow; ++w) MPI_Isend(buf.data(), n, MPI_CHAR, peer, 1, MPI_COMM_WORLD, &reqs[static_cast<std::size_t>(w)]);
      MPI_Waitall(kWindow, reqs.data(), MPI_STATUSES_IGNORE);
      MPI_Recv(&ack, 1, MPI_INT, peer, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else {
      for (int w = 0; w < kWindow; ++w) MPI_Irecv(buf.data(), n, MPI_CHAR, peer, 1, MPI_COMM_WORLD, &reqs[static_cast<std::size_t>(w)]);
      MPI_Waitall(kWindow, reqs.data(), MPI_STATUSES_IGNORE);
      MPI_Send(&ack, 1, MPI_INT, peer, 2, MPI_COMM_WORLD);
    }
  }
  return (p2p_bench::now_us() - t0) / a.iterations * 1e-6;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = p2p_bench::parse(argc, argv);
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  double value = 0;
  const char* unit = "us";
  if (a.bench == "latency") {
    value = latency(a);
  } else if (a.bench == "latency_cereal_struct") {
    value = latency_cereal(a);
  } else if (a.bench == "latency_vector_double_1000") {
    a.bytes = 8000;
    value = latency_vector(a);
  } else if (a.bench == "cereal_struct_over_8b") {
    value = struct_over_8b(a);
    unit = "ratio";
  } else if (a.bench == "bandwidth") {
    value = static_cast<double>(a.bytes) * kWindow / windows(a) * 1e-9;
    unit = "GB/s";
  } else if (a.bench == "message_rate") {
    value = kWindow / windows(a);
    unit = "msg/s";
  }
  if (rank_ == 0) p2p_bench::report("openmpi", a, value, unit);
  MPI_Finalize();
}
