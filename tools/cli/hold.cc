// mdevmig hold UUID... -- CMD [ARGS...]: keeps instances open while CMD runs, so the
// mdevmig commands CMD runs act on the held instances (held.h) instead of opening them
// afresh, which resets an instance, while closing forgets its state.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "migration/engine/recovery.h"
#include "migration/vfio/mig_state.h"
#include "tools/cli/args.h"
#include "tools/cli/command.h"
#include "tools/cli/context.h"
#include "tools/cli/device_arg.h"
#include "tools/cli/held.h"

namespace mdevmig::cli {
namespace {

constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP};

// The child, for the signal handler (0 while there is none).
volatile sig_atomic_t g_child = 0;

// A signal another process sent to the holder goes on to the child. One the kernel
// generated for the terminal's foreground group (Ctrl-C: si_code SI_KERNEL) reached the
// child already: passing it on would deliver it twice.
void forward(int sig, siginfo_t* info, void*) {
  const pid_t child = g_child;
  if (child > 0 && (info == nullptr || info->si_code <= 0)) ::kill(child, sig);
}

// The parsed command line.
struct HoldLine {
  std::vector<DeviceSpec> devices;
  std::vector<std::string> command;
};

Result<HoldLine> parse_hold_line(std::span<const char* const> argv) {
  HoldLine line;
  size_t i = 0;
  for (; i < argv.size() && std::string_view(argv[i]) != "--"; ++i) {
    const std::string_view a = argv[i];
    if (a.starts_with("-"))
      return usage_error(a, "unknown option (mdevmig hold UUID... -- CMD [ARGS...])");
    auto spec = parse_device_spec(a);
    if (spec.ok() && spec->is_fd())
      return usage_error(
          "UUID", "hold opens instances by UUID; '" + spec->text + "' is already an open fd");
    if (!spec.ok())
      return usage_error(
          "UUID", "'" + std::string(a) + "' is not an mdev UUID or /sys/bus/mdev/devices/UUID");
    for (const auto& d : line.devices)
      if (d.uuid == spec->uuid) return usage_error("UUID", spec->uuid + " is named twice");
    line.devices.push_back(std::move(*spec));
  }
  if (line.devices.empty())
    return usage_error("UUID", "missing (mdevmig hold UUID... -- CMD [ARGS...])");
  if (i == argv.size())
    return usage_error("--", "missing before the command: mdevmig hold UUID... -- CMD [ARGS...]");
  for (++i; i < argv.size(); ++i) line.command.emplace_back(argv[i]);
  if (line.command.empty()) return usage_error("CMD", "missing after --");
  return line;
}

// Forks and execs `command` (PATH searched, no shell) with `keep` inheritable.
// Returns the child's pid, or the error of fork or exec (then no child is left).
Result<pid_t> start(const std::vector<std::string>& command, const std::vector<int>& keep) {
  int pipefd[2];  // the exec error, if any, comes back through it
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return Error::from_errno("pipe2");
  UniqueFd rd(pipefd[0]), wr(pipefd[1]);
  std::vector<char*> argv;
  argv.reserve(command.size() + 1);
  for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  sigset_t block, old;
  sigemptyset(&block);
  for (int s : kForwarded) sigaddset(&block, s);
  ::sigprocmask(SIG_BLOCK, &block, &old);
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (int s : kForwarded) ::signal(s, SIG_DFL);
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    for (int fd : keep) ::fcntl(fd, F_SETFD, 0);
    ::execvp(argv[0], argv.data());
    const int e = errno;
    (void)!::write(wr.get(), &e, sizeof(e));
    ::_exit(127);
  }
  const int fork_errno = errno;
  if (pid > 0) g_child = pid;
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return Error::make(fork_errno, "fork");
  wr.reset();
  int exec_errno = 0;
  ssize_t n;
  do n = ::read(rd.get(), &exec_errno, sizeof(exec_errno));
  while (n < 0 && errno == EINTR);
  if (n == sizeof(exec_errno)) {
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    g_child = 0;
    return Error::make(exec_errno, "exec", command[0]);
  }
  return pid;
}

// Waits for the child; its exit code, or 128 + the signal that killed it.
int wait_child(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return kExitDevice;
  }
  g_child = 0;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// After CMD: a device left out of RUNNING goes back to it (else is reset), and the user is
// told. False if it could not be recovered.
bool settle(const DeviceSpec& spec, const vfio::Device& dev) {
  auto now = dev.mig_state();
  if (!now.ok() || *now == vfio::MigState::kRunning) return true;  // no v2 state to settle, or fine
  const engine::Recovery r = engine::StateDriver(dev).recover_to(vfio::MigState::kRunning);
  std::fprintf(stderr, "mdevmig hold: %s: the command left it in %s; %s\n", spec.uuid.c_str(),
               vfio::mig_state_name(*now).c_str(), r.text().c_str());
  return r.recovered;
}

}  // namespace

Args hold_args() {
  Args args(
      "hold UUID... -- CMD [ARGS...]",
      "Opens each instance once and keeps it open while CMD runs (started directly, not\n"
      "through a shell: give one, e.g. sh -c '...', to run several commands). Opening an\n"
      "instance resets it and closing it forgets its state, so by UUID each mdevmig\n"
      "command would start from a reset device and leave nothing behind; inside one hold\n"
      "they all work on the same open instance, e.g. this saves what was restored:\n\n"
      "  mdevmig hold $U -- sh -c 'mdevmig restore $U vm.sav && mdevmig save $U again.sav'\n\n" +
          std::string(kHeldHelp));
  args.positional("UUID...",
                  "the instances to hold (mdev UUIDs in any case, or /sys/bus/mdev/devices/UUID)");
  args.positional("CMD [ARGS...]", "the command to run while they are held, after --");
  args.epilogue(
      "\nExit status: CMD's exit status (128 + the signal if a signal ended it); 2 usage (nothing\n"
      "is opened); 3 an instance could not be opened, or 127 CMD could not be run (nothing ran);\n"
      "3 also when CMD succeeded but left a device that could not be returned to RUNNING.");
  return args;
}

int run_hold(Context& ctx) {
  auto line = parse_hold_line(ctx.argv());
  if (!line.ok()) return ctx.fail(line.error());
  auto held = held_from_env();
  if (!held.ok()) return ctx.fail(held.error());

  // Opened once, here; an instance an enclosing hold holds is used as it holds it.
  std::vector<OpenedDevice> devices;
  std::vector<HeldEntry> entries = *held;
  std::vector<int> keep;
  for (const auto& spec : line->devices) {
    auto dev = OpenedDevice::open(spec);
    if (!dev.ok()) return ctx.fail(dev.error());
    if (!dev->held()) {
      entries.push_back({spec.uuid, dev->group()->fd(), dev->dev().fd()});
      keep.push_back(dev->group()->fd());
      keep.push_back(dev->dev().fd());
    }
    devices.push_back(std::move(*dev));
  }
  // Kept for CMD: the enclosing holds' fds are inherited already.
  if (::setenv(kHeldEnv, format_held(entries).c_str(), 1) != 0)
    return ctx.fail(Error::from_errno("setenv", kHeldEnv));

  struct sigaction sa {
  }, saved[std::size(kForwarded)];
  sa.sa_sigaction = forward;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < std::size(kForwarded); ++i) ::sigaction(kForwarded[i], &sa, &saved[i]);
  auto pid = start(line->command, keep);
  int code = kExitOk;
  if (!pid.ok()) {
    ctx.fail(pid.error());
    code = pid.error().op == "exec" ? 127 : kExitDevice;
  } else {
    code = wait_child(*pid);
  }
  for (size_t i = 0; i < std::size(kForwarded); ++i) ::sigaction(kForwarded[i], &saved[i], nullptr);

  bool settled = true;
  for (const auto& d : devices) settled &= settle(d.spec(), d.dev());
  return code == kExitOk && !settled ? kExitDevice : code;
}

}  // namespace mdevmig::cli
