// Model: the bytes of one .bnn file, memory-mapped read-only (POSIX) or copied into a
// 64-byte aligned buffer, validated by format::parse_model() before anyone can use it.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <system_error>

#include "bnnkit/runtime.h"

namespace bnnkit {

void Model::parse() { desc_ = format::parse_model(data_, size_); }

Model::~Model() {
  if (mapped_) munmap(const_cast<std::uint8_t*>(data_), size_);
  std::free(owned_);
}

std::shared_ptr<const Model> Model::from_buffer(const void* data, std::size_t size) {
  std::shared_ptr<Model> m(new Model());
  const std::size_t alloc = (size + 63) / 64 * 64 + 64;
  m->owned_ = std::aligned_alloc(64, alloc);
  if (!m->owned_) throw std::bad_alloc();
  if (size) std::memcpy(m->owned_, data, size);
  m->data_ = static_cast<const std::uint8_t*>(m->owned_);
  m->size_ = size;
  m->parse();
  return m;
}

std::shared_ptr<const Model> Model::from_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot open '" + path + "'");
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::runtime_error("'" + path + "' is not a regular file");
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  std::shared_ptr<Model> m(new Model());
  if (size > 0) {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw std::system_error(err, std::generic_category(), "cannot map '" + path + "'");
    }
    m->data_ = static_cast<const std::uint8_t*>(p);
    m->mapped_ = true;
  }
  ::close(fd);
  m->size_ = size;
  try {
    m->parse();
  } catch (const format::FormatError& e) {
    throw format::FormatError("'" + path + "': " + e.what());
  }
  return m;
}

}  // namespace bnnkit
