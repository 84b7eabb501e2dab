#include "tools/qemu/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/check.h"
#include "base/fd.h"

namespace mdevmig::qemu {

const char* vfio_protocol_name(VfioProtocol p) {
  switch (p) {
    case VfioProtocol::kAuto:
      return "auto";
    case VfioProtocol::kV1:
      return "v1";
    case VfioProtocol::kV2:
      return "v2";
  }
  return "?";
}

Result<VfioProtocol> parse_vfio_protocol(std::string_view text) {
  if (text == "auto") return VfioProtocol::kAuto;
  if (text == "v1") return VfioProtocol::kV1;
  if (text == "v2") return VfioProtocol::kV2;
  return Error::make(EINVAL, "parse --protocol",
                     "'" + std::string(text) + "' (want auto, v1 or v2)");
}

Result<uint32_t> qemu_version(const std::string& binary) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Error::from_errno("pipe", binary);
  UniqueFd rd(out[0]), wr(out[1]);
  const pid_t pid = ::fork();
  if (pid < 0) return Error::from_errno("fork", binary);
  if (pid == 0) {
    ::dup2(wr.get(), 1);
    ::execlp(binary.c_str(), binary.c_str(), "--version", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  wr.reset();
  std::string text;
  char buf[512];
  for (ssize_t n; (n = ::read(rd.get(), buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    return Error::make(ENOEXEC, "run", binary + " --version: " + describe_wait_status(st));
  // "QEMU emulator version 10.0.13 (Debian 1:10.0.13+ds-0+deb13u1)"
  unsigned major = 0, minor = 0;
  const auto at = text.find("version ");
  if (at == std::string::npos ||
      std::sscanf(text.c_str() + at, "version %u.%u", &major, &minor) != 2)
    return Error::make(EPROTO, "parse", binary + " --version: '" + text.substr(0, 120) + "'");
  return major * 100 + minor;
}

Result<VfioProtocol> vfio_protocol_for(uint32_t version) {
  if (version < 800) return VfioProtocol::kV1;
  if (version >= 801) return VfioProtocol::kV2;
  return Error::make(ENOTSUP, "VFIO migration protocol",
                     "QEMU 8.0 (v2 without pre-copy behind x-enable-migration) is not supported; "
                     "use 7.2 or >= 8.1");
}

Result<VfioProtocol> resolve_vfio_protocol(VfioProtocol p, const std::string& binary) {
  if (p != VfioProtocol::kAuto) return p;
  return vfio_protocol_for(MDEVMIG_TRY(qemu_version(binary)));
}

std::vector<std::string> QemuConfig::argv() const {
  auto vfio_dev = [&](const std::string& uuid, const std::string& addr) {
    // The one difference between QEMU generations the harness has to care about.
    return "vfio-pci,sysfsdev=/sys/bus/mdev/devices/" + uuid + ",addr=" + addr +
           (protocol == VfioProtocol::kV1 ? ",x-enable-migration=on" : ",enable-migration=on");
  };
  MDEVMIG_CHECK(!mdev_uuid.empty() || more_mdevs.empty(), "more_mdevs without a first device");
  std::vector<std::string> a = {binary,
                                "-M",
                                machine,
                                "-accel",
                                "tcg",
                                "-bios",
                                bios,
                                "-m",
                                std::to_string(mem_mb),
                                "-nodefaults",
                                "-no-user-config",
                                "-display",
                                "none"};
  if (!mdev_uuid.empty()) {
    a.emplace_back("-device");
    a.push_back(vfio_dev(mdev_uuid, pci_addr));
  }
  a.insert(a.end(), {"-qtest", qtest_endpoint().uri() + ",server=on,wait=off", "-qtest-log", "none",
                     "-qmp", qmp_endpoint().uri() + ",server=on,wait=off"});
  if (!more_mdevs.empty()) {
    // pci_addr is a slot number here ("0x3"); a "slot.function" form takes no neighbours.
    char* end = nullptr;
    const unsigned long first = std::strtoul(pci_addr.c_str(), &end, 0);
    MDEVMIG_CHECK(*end == '\0' && first + more_mdevs.size() < 32,
                  "pci_addr %s leaves no slots for %zu more devices", pci_addr.c_str(),
                  more_mdevs.size());
    for (std::size_t i = 0; i < more_mdevs.size(); ++i) {
      char addr[16];
      std::snprintf(addr, sizeof addr, "0x%lx", first + 1 + i);
      a.emplace_back("-device");
      a.push_back(vfio_dev(more_mdevs[i], addr));
    }
  }
  if (incoming) {
    a.emplace_back("-incoming");
    a.push_back(*incoming);
  }
  a.insert(a.end(), extra_args.begin(), extra_args.end());
  return a;
}

Result<bool> prepare_vm_dir(std::string& dir, std::string& bios, const std::string& prefix) {
  bool owned = false;
  if (dir.empty()) {
    std::string tmpl = "/tmp/" + prefix + ".XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) return Error::from_errno("mkdtemp", tmpl);
    dir = tmpl;
    owned = true;
  } else if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Error::from_errno("mkdir", dir);
  }
  if (bios.empty()) {
    bios = dir + "/halt.bin";
    MDEVMIG_TRY(write_halt_bios(bios));
  }
  return owned;
}

void remove_vm_dir(const std::string& dir) {
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ::unlink((dir + "/" + e->d_name).c_str());
    ::closedir(d);
  }
  ::rmdir(dir.c_str());
}

Result<void> write_halt_bios(const std::string& path, std::size_t size) {
  std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return Error::from_errno("create", tmp);
  std::string hlt(size, '\xf4');
  if (::write(fd.get(), hlt.data(), hlt.size()) != static_cast<ssize_t>(hlt.size()))
    return Error::from_errno("write", tmp);
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Error::from_errno("rename", path);
  return ok();
}

Result<QemuProcess> QemuProcess::start(const QemuConfig& config) {
  std::vector<std::string> args = config.argv();
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (const auto& e : {config.qmp_endpoint(), config.qtest_endpoint()})
    if (!e.is_tcp()) ::unlink(e.path.c_str());
  UniqueFd log(::open(config.log_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!log) return Error::from_errno("create", config.log_path());
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull) return Error::from_errno("open", "/dev/null");
  const pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) return Error::from_errno("fork", config.binary);
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::dup2(devnull.get(), 0);
    ::dup2(log.get(), 1);
    ::dup2(log.get(), 2);
    ::setpgid(0, 0);  // a terminal's ^C reaches only the harness, which cleans up
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  return QemuProcess(config, pid);
}

QemuProcess::QemuProcess(QemuProcess&& other) noexcept
    : config_(std::move(other.config_)),
      pid_(std::exchange(other.pid_, -1)),
      status_(other.status_) {}

QemuProcess& QemuProcess::operator=(QemuProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !status_) kill();
    config_ = std::move(other.config_);
    pid_ = std::exchange(other.pid_, -1);
    status_ = other.status_;
  }
  return *this;
}

QemuProcess::~QemuProcess() {
  if (pid_ <= 0) return;
  if (!status_) kill();
  for (const auto& e : {config_.qmp_endpoint(), config_.qtest_endpoint()})
    if (!e.is_tcp()) ::unlink(e.path.c_str());
}

Result<QmpClient> QemuProcess::connect_qmp(std::chrono::milliseconds timeout) const {
  auto c = QmpClient::connect(config_.qmp_endpoint(), timeout);
  if (!c) c.error().add_context("QEMU " + config_.name + " (pid " + std::to_string(pid_) + ")");
  return c;
}

Result<QtestClient> QemuProcess::connect_qtest(std::chrono::milliseconds timeout) const {
  auto c = QtestClient::connect(config_.qtest_endpoint(), timeout);
  if (!c) c.error().add_context("QEMU " + config_.name + " (pid " + std::to_string(pid_) + ")");
  return c;
}

void QemuProcess::reap(bool block) {
  if (pid_ <= 0 || status_) return;
  int st = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &st, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_)
    status_ = st;
  else if (r < 0 && errno == ECHILD)
    status_ = -1;  // reaped elsewhere: gone all the same
}

bool QemuProcess::running() {
  reap(false);
  return pid_ > 0 && !status_;
}

void QemuProcess::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

Result<int> QemuProcess::wait(std::chrono::milliseconds timeout) {
  Deadline until = deadline_in(timeout);
  for (;;) {
    reap(false);
    if (status_) return *status_;
    if (Clock::now() >= until)
      return Error::make(ETIMEDOUT, "wait for QEMU " + config_.name, "pid " + std::to_string(pid_));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int QemuProcess::kill() {
  if (pid_ <= 0) return -1;
  if (!status_) {
    ::kill(pid_, SIGKILL);
    reap(true);
  }
  return status_.value_or(-1);
}

std::string QemuProcess::log_tail(std::size_t max) const {
  std::ifstream in(config_.log_path());
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() <= max ? s : s.substr(s.size() - max);
}

namespace {

std::string first_line(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

// The x86-64 system calls a stuck QEMU or relay thread sits in, and whether their first
// argument is a file descriptor.
struct SyscallName {
  long nr;
  const char* name;
  bool fd_arg;
};
constexpr SyscallName kSyscalls[] = {
    {0, "read", true},
    {1, "write", true},
    {7, "poll", false},
    {16, "ioctl", true},
    {17, "pread64", true},
    {18, "pwrite64", true},
    {19, "readv", true},
    {20, "writev", true},
    {23, "select", false},
    {35, "nanosleep", false},
    {44, "sendto", true},
    {45, "recvfrom", true},
    {46, "sendmsg", true},
    {47, "recvmsg", true},
    {61, "wait4", false},
    {202, "futex", false},
    {230, "clock_nanosleep", false},
    {232, "epoll_wait", false},
    {270, "pselect6", false},
    {271, "ppoll", false},
    {281, "epoll_pwait", false},
    {426, "io_uring_enter", true},
};

// "read(fd 12 anon_inode:[mdevmig-data])" from /proc/PID/task/TID/syscall ("NR arg1 ...
// sp pc", or "running"); "" when the thread is not in a system call.
std::string describe_syscall(const std::string& pid_dir, const std::string& task) {
  std::istringstream in(first_line(task + "/syscall"));
  long nr = -1;
  std::string arg1;
  if (!(in >> nr) || nr < 0) return "";
  in >> arg1;
  std::string out = "syscall " + std::to_string(nr);
  for (const auto& s : kSyscalls) {
    if (s.nr != nr) continue;
    out = s.name;
    if (s.fd_arg && !arg1.empty()) {
      const unsigned long fd = std::strtoul(arg1.c_str(), nullptr, 16);
      char target[256] = {};
      const std::string link = pid_dir + "/fd/" + std::to_string(fd);
      const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
      out += "(fd " + std::to_string(fd) +
             (n > 0 ? " " + std::string(target, static_cast<std::size_t>(n)) : "") + ")";
    }
    break;
  }
  return out;
}

// The kernel frames of a blocked thread that belong to VFIO or this project's module
// (where a wait in the device driver shows), innermost first; "" if none or unreadable.
std::string driver_frames(const std::string& task) {
  std::ifstream f(task + "/stack");
  std::string line, out;
  while (std::getline(f, line)) {
    // "[<0>] mdevmig_data_read+0x1a/0x2b0 [mdevmig]"
    const auto sp = line.find(' ');
    const std::string frame = sp == std::string::npos ? line : line.substr(sp + 1);
    if (frame.find("mdevmig") == std::string::npos && frame.find("vfio") == std::string::npos)
      continue;
    out += (out.empty() ? "" : " < ") + frame.substr(0, frame.find('+'));
  }
  return out;
}

}  // namespace

std::string describe_threads(pid_t pid) {
  if (pid <= 0) return "";
  const std::string pid_dir = "/proc/" + std::to_string(pid);
  const std::string dir = pid_dir + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return "";
  std::string out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string task = dir + "/" + e->d_name;
    // stat: "tid (comm) state ...": the state follows the last ')'.
    const std::string stat = first_line(task + "/stat");
    const auto close = stat.rfind(')');
    const std::string state =
        close != std::string::npos && close + 2 < stat.size() ? stat.substr(close + 2, 1) : "?";
    std::string wchan = first_line(task + "/wchan");
    if (wchan.empty() || wchan == "0") wchan = "-";
    if (!out.empty()) out += ", ";
    out += first_line(task + "/comm") + " " + state + " " + wchan;
    if (state != "R") {
      if (const std::string call = describe_syscall(pid_dir, task); !call.empty())
        out += " " + call;
      if (const std::string frames = driver_frames(task); !frames.empty())
        out += " [" + frames + "]";
    }
  }
  ::closedir(d);
  return out;
}

std::string describe_wait_status(int status) {
  if (status < 0) return "gone";
  if (WIFEXITED(status)) return "exited " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

}  // namespace mdevmig::qemu
