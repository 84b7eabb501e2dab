// mdevmig restore DEVICE FILE: a save file back into a device. The whole file is
// verified before the device is opened (unless --single-pass), and the file's device
// identity is checked against the device before its state changes.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <span>
#include <string>

#include "migration/engine/channel.h"
#include "migration/engine/savefile.h"
#include "tools/cli/args.h"
#include "tools/cli/choice_options.h"
#include "tools/cli/command.h"
#include "tools/cli/context.h"
#include "tools/cli/device_arg.h"
#include "tools/cli/json_out.h"

namespace mdevmig::cli {

Args restore_args() {
  Args args(
      "restore DEVICE FILE [options]",
      "Loads FILE (written by `mdevmig save`) into DEVICE, which then runs (unless --stopped).\n"
      "FILE is verified completely first (checksums of every chunk, totals, trailer) and its\n"
      "device identity must match DEVICE; only then is the device touched. FILE must be a\n"
      "regular file (it is mapped, not streamed).\n" +
          std::string(kDeviceFormsHelp));
  args.positional("DEVICE", "the device to restore into");
  args.positional("FILE", "the save file");
  declare_channel(args, "migration interface");
  args.flag("single-pass",
            "stream the file once: each chunk is verified before it is fed, but damage\n"
            "                        late in the file is found after the device started loading "
            "(it is reset)");
  args.flag("stopped", "leave the device stopped after loading");
  args.flag("json", "print the report as JSON");
  args.epilogue(kExitCodesHelp);
  return args;
}

int run_restore(Context& ctx) {
  const Args& args = ctx.args();
  auto spec = parse_device_spec(*args.get("DEVICE"));
  if (!spec.ok()) return ctx.fail(spec.error());
  auto pref = get_channel(args);
  if (!pref.ok()) return ctx.fail(pref.error());
  const std::string file = *args.get("FILE");
  if (auto e = check_save_file_arg(file, true)) return ctx.fail(*e);
  UniqueFd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return ctx.fail(Error::from_errno("open", file));

  auto scanner = engine::FileScanner::open(in.get(), file);
  if (!scanner.ok()) return ctx.fail(std::move(scanner.error()).add_note("device not touched"));
  const bool verify_first = !args.has("single-pass");
  double verify_s = 0;
  if (verify_first) {
    // Pass 1 before the device is even opened; restore_from_file then only loads.
    const auto t0 = std::chrono::steady_clock::now();
    auto sum = engine::verify_file(*scanner, {}, ctx.cancel());
    if (!sum.ok())
      return ctx.fail(std::move(sum.error()).add_context(file).add_note("device not touched"));
    verify_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  warn_uuid_mode("restore", *spec);
  auto dev = OpenedDevice::open(*spec);
  if (!dev.ok()) return ctx.fail(dev.error());
  auto id = dev->identity();
  if (!id.ok()) return ctx.fail(id.error());
  auto ch = engine::open_channel(dev->dev(), *pref, false);
  if (!ch.ok()) return ctx.fail(ch.error());

  Progress progress("restore " + spec->text);
  engine::RestoreOptions opt;
  opt.verify_first = verify_first;  // pass 1 is done: *scanner is verified
  opt.run = !args.has("stopped");
  opt.cancel = ctx.cancel();
  opt.progress = [&](uint64_t bytes, uint64_t total) { progress.update(bytes, total); };
  auto rep = engine::restore_from_file(**ch, *id, *scanner, opt);
  progress.finish();
  if (!rep.ok()) return ctx.fail(rep.error());
  if (ctx.json()) {
    ctx.print_json(
        restore_json(spec->text, file, (*ch)->kind(), *rep, verify_s, args.has("stopped")));
  } else {
    std::printf(
        "restored %s from %s: %s in %llu chunks via %s (verify %.3f s, load %.3f s), device %s\n",
        spec->text.c_str(), file.c_str(),
        human_bytes(static_cast<double>(rep->stream_bytes)).c_str(),
        static_cast<unsigned long long>(rep->chunks), schema::channel_name((*ch)->kind()), verify_s,
        rep->restore_seconds, args.has("stopped") ? "stopped" : "running");
  }
  return kExitOk;
}

Json restore_json(const std::string& device, const std::string& file, schema::Channel channel,
                  const engine::RestoreReport& r, double verify_s, bool stopped) {
  Json j = json_document("restore");
  j["device"] = device;
  j["file"] = file;
  j["channel"] = schema::channel_name(channel);
  j["stream_bytes"] = r.stream_bytes;
  j["chunks"] = r.chunks;
  j["verify_seconds"] = verify_s;
  j["restore_seconds"] = r.restore_seconds;
  j["source_uuid"] = r.header.device.uuid;
  j["source_created"] = iso8601(r.header.created_unix_ns);
  j["device_state_after"] = stopped ? "STOP" : "RUNNING";
  return j;
}

}  // namespace mdevmig::cli
