// Persistent thread pool (see bnnkit/thread_pool.h).
#include "bnnkit/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#define BNNKIT_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define BNNKIT_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define BNNKIT_CPU_RELAX() std::this_thread::yield()
#endif

namespace bnnkit {

std::int64_t ThreadPool::spin_micros() {
  static const std::int64_t micros = [] {
    const char* env = std::getenv("BNNKIT_SPIN_US");
    if (env == nullptr || *env == '\0') return std::int64_t{100};
    char* end = nullptr;
    const long long v = std::strtoll(env, &end, 10);
    return (*end != '\0' || v < 0) ? std::int64_t{100} : std::min<std::int64_t>(v, 100000);
  }();
  return micros;
}

template <typename Done>
void ThreadPool::spin_until(const Done& done) {
  const std::int64_t micros = spin_micros();
  if (micros == 0) return;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return;
      BNNKIT_CPU_RELAX();
    }
    if (std::chrono::steady_clock::now() >= deadline) return;
  }
}

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads < 1) {
    throw std::invalid_argument("ThreadPool: num_threads must be >= 1, got " +
                                std::to_string(num_threads));
  }
  workers_.reserve(num_threads - 1);
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

// Claims range p = next_part_++ while any is left and runs [n*p/parts, n*(p+1)/parts)
// without the lock. body_ stays valid while running_ > 0: the caller waits for that.
void ThreadPool::run_claimed(std::unique_lock<std::mutex>& lock) {
  while (next_part_ < parts_) {
    const std::int64_t p = next_part_++;
    ++running_;
    const std::int64_t begin = n_ * p / parts_, end = n_ * (p + 1) / parts_;
    const Body* body = body_;
    lock.unlock();
    std::exception_ptr error;
    try {
      if (begin < end) (*body)(begin, end);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (error && !error_) error_ = error;
    if (--running_ == 0 && next_part_ == parts_) done_.notify_one();
  }
}

void ThreadPool::worker_loop() {
  std::uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (!stop_ && generation_ == seen) {  // poll for the next call before sleeping
      lock.unlock();
      spin_until([&] { return announced_.load(std::memory_order_acquire) != seen; });
      lock.lock();
    }
    wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    run_claimed(lock);
  }
}

void ThreadPool::parallel_for(std::int64_t n, const Body& body, std::int64_t parts) {
  if (n <= 0) return;
  if (parts <= 0) parts = num_threads();
  parts = std::min(n, parts);
  if (workers_.empty() || parts == 1) {  // same ranges, in order, on this thread
    for (std::int64_t p = 0; p < parts; ++p) {
      const std::int64_t begin = n * p / parts, end = n * (p + 1) / parts;
      if (begin < end) body(begin, end);
    }
    return;
  }
  std::lock_guard<std::mutex> call(call_mutex_);
  std::unique_lock<std::mutex> lock(mutex_);
  body_ = &body;
  n_ = n;
  parts_ = parts;
  next_part_ = 0;
  running_ = 0;
  error_ = nullptr;
  ++generation_;
  announced_.store(generation_, std::memory_order_release);
  wake_.notify_all();
  run_claimed(lock);
  if (running_ != 0) {  // every range is claimed: poll for the workers' last ones first
    lock.unlock();
    spin_until([&] { return running_.load(std::memory_order_acquire) == 0; });
    lock.lock();
  }
  done_.wait(lock, [&] { return running_ == 0; });
  body_ = nullptr;
  std::exception_ptr error = error_;
  error_ = nullptr;
  if (error) std::rethrow_exception(error);
}

}  // namespace bnnkit
