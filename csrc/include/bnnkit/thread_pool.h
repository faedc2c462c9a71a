// A small persistent thread pool for the kernels and the runtime.
//
//   bnnkit::ThreadPool pool(2);               // the calling thread + 1 worker
//   pool.parallel_for(n, [&](int64_t begin, int64_t end) { ... });
//
// parallel_for splits [0, n) into `parts` contiguous, near-equal ranges (num_threads() by
// default); range p is [n*p/parts, n*(p+1)/parts), fixed by n and parts alone, so what a
// body computes never depends on timing. The ranges are claimed in order by whichever
// thread is free: the calling thread starts at once and keeps claiming, and a worker that
// wakes late (its core busy) finds the remaining ranges already taken instead of holding
// up the call. With more parts than threads the ranges balance uneven progress.
//
// Waiting: an idle worker first polls for the next call for a short while (spin_micros(),
// default 100 us, BNNKIT_SPIN_US overrides it, 0 disables), then sleeps on a condition
// variable; the caller likewise polls for the workers' last ranges before sleeping. A
// network's ops come microseconds apart, and waking a sleeping thread costs ~5-20 us, as
// much as a whole small op. On a machine whose cores are all busy, set BNNKIT_SPIN_US=0.
// Concurrent calls on one pool are serialized (one runs at a time). An exception thrown by
// the body is re-thrown on the calling thread.
#pragma once

#include <atomic>
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
  // How long idle threads poll before sleeping (see the top comment).
  static std::int64_t spin_micros();

  // Runs body over [0, n) split into min(n, parts) ranges (parts <= 0: num_threads());
  // blocks until all finish.
  void parallel_for(std::int64_t n, const Body& body, std::int64_t parts = 0);

 private:
  void worker_loop();
  // Claims and runs ranges of the current call until none is left; `lock` holds mutex_.
  void run_claimed(std::unique_lock<std::mutex>& lock);
  // Polls (without the lock) until `done()` or spin_micros() pass.
  template <typename Done>
  static void spin_until(const Done& done);

  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // serializes parallel_for calls
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const Body* body_ = nullptr;
  std::int64_t n_ = 0;
  std::int64_t parts_ = 0;
  std::int64_t next_part_ = 0;  // first unclaimed range
  std::atomic<int> running_{0};  // claimed ranges not finished yet (changed under mutex_)
  std::uint64_t generation_ = 0;
  std::atomic<std::uint64_t> announced_{0};  // generation_, readable without the lock
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace bnnkit
