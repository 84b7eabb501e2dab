#include <fcntl.h>
#include <unistd.h>

#include <cctype>

#include "base/fd.h"
#include "tools/report/render.h"

namespace mdevmig::report {
namespace {

bool ends_with_nocase(std::string_view s, std::string_view suffix) {
  if (s.size() <= suffix.size()) return false;  // a name, not only the suffix
  for (std::size_t i = 0; i < suffix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[s.size() - suffix.size() + i])) != suffix[i])
      return false;
  return s[s.size() - suffix.size() - 1] != '/';
}

}  // namespace

std::optional<Format> format_of(std::string_view path) {
  if (ends_with_nocase(path, ".html")) return Format::kHtml;
  if (ends_with_nocase(path, ".svg")) return Format::kSvg;
  return std::nullopt;
}

Result<void> write_file(const std::string& path, std::string_view text) {
  // Next to the file (the same file system, so rename() is atomic), unique to this
  // process; O_EXCL so a stale one of someone else's is never written through. Errors
  // name the file asked for, and the step.
  const std::string tmp = path + "." + std::to_string(::getpid()) + ".tmp";
  auto fail = [&](const std::string& step) {
    const int err = errno;  // before the strings below allocate
    ::unlink(tmp.c_str());
    return Error::make(err, "write report", path + " (" + step + ")");
  };
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) {
    const int err = errno;
    return Error::make(err, "write report", path + " (creating " + tmp + ")");
  }
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return fail("writing");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("fsync");
  if (::close(fd.release()) != 0) return fail("close");
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("renaming the temporary file over it");
  return ok();
}

}  // namespace mdevmig::report
