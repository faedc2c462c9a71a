// A small persistent thread pool for the kernels and the runtime.
//
//   bnnkit::ThreadPool pool(2);               // the calling thread + 1 worker
//   pool.parallel_for(n, [&](int64_t begin, int64_t end) { ... });
//
// parallel_for splits [0, n) into num_threads() contiguous, near-equal ranges (a static
// partition, so which thread computes which element never depends on timing) and runs
// the first range on the calling thread. Idle workers sleep on a condition variable; no
// thread spins. Concurrent calls on one pool are serialized (one runs at a time). An
// exception thrown by the body is re-thrown on the calling thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace bnnkit {

class ThreadPool {
 public:
  using Body = std::function<void(std::int64_t begin, std::int64_t end)>;

  // num_threads >= 1 counts the calling thread; num_threads - 1 workers are started.
  explicit ThreadPool(int num_threads = 1);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs body over [0, n) split into at most num_threads() ranges; blocks until all finish.
  void parallel_for(std::int64_t n, const Body& body);

 private:
  void worker_loop(int index);
  void run_range(int part, int parts);

  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // serializes parallel_for calls
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const Body* body_ = nullptr;
  std::int64_t n_ = 0;
  int parts_ = 0;
  int pending_ = 0;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace bnnkit
