#include "tools/qemu/qmp.h"

#include <algorithm>
#include <cstdlib>

namespace mdevmig::qemu {
namespace {

using json = nlohmann::json;

Error protocol_error(const std::string& channel, std::string what) {
  return Error::make(EPROTO, "QMP", channel + ": " + std::move(what));
}

// Shortens a line for error messages.
std::string excerpt(std::string_view line) {
  return line.size() <= 120 ? std::string(line) : std::string(line.substr(0, 117)) + "...";
}

Error with_context(Error e, const std::string& op) {
  e.add_context(op);
  return e;
}

}  // namespace

Result<QmpClient> QmpClient::connect(const Endpoint& at, std::chrono::milliseconds timeout) {
  Deadline until = deadline_in(timeout);
  LineChannel ch = MDEVMIG_TRY(LineChannel::connect(at, until));
  auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now());
  return handshake(std::move(ch), std::max(left, std::chrono::milliseconds(1)));
}

Result<QmpClient> QmpClient::handshake(LineChannel channel, std::chrono::milliseconds timeout) {
  Deadline until = deadline_in(timeout);
  QmpClient c(std::move(channel));
  auto line = c.channel_.read_line(until);
  if (!line) return with_context(std::move(line).error(), "QMP greeting");
  json greeting = json::parse(*line, nullptr, /*allow_exceptions=*/false);
  if (greeting.is_discarded() || !greeting.is_object() || !greeting.contains("QMP") ||
      !greeting["QMP"].is_object())
    return protocol_error(c.channel_.name(), "expected a greeting, got '" + excerpt(*line) + "'");
  c.greeting_ = greeting["QMP"];
  auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now());
  MDEVMIG_TRY(c.execute("qmp_capabilities", nullptr, std::max(left, std::chrono::milliseconds(1))));
  return c;
}

std::string QmpClient::version() const {
  auto v = greeting_.find("version");
  if (v == greeting_.end() || !v->is_object()) return "?";
  auto q = v->find("qemu");
  if (q == v->end() || !q->is_object()) return "?";
  auto num = [&](const char* k) {
    auto it = q->find(k);
    return it != q->end() && it->is_number_integer() ? std::to_string(it->get<int64_t>())
                                                     : std::string("?");
  };
  return num("major") + "." + num("minor") + "." + num("micro");
}

int QmpClient::version_major() const {
  const std::string v = version();
  return v.empty() || v[0] == '?' ? 0 : std::atoi(v.c_str());
}

void QmpClient::queue_event(QmpEvent event) {
  if (events_.size() >= kMaxQueuedEvents) {
    events_.pop_front();
    ++dropped_events_;
  }
  events_.push_back(std::move(event));
}

Result<void> QmpClient::handle_line(const std::string& line, uint64_t want_id,
                                    std::optional<json>* reply) {
  if (line.empty()) return ok();
  json msg = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (msg.is_discarded() || !msg.is_object())
    return protocol_error(channel_.name(), "malformed message '" + excerpt(line) + "'");
  if (auto ev = msg.find("event"); ev != msg.end()) {
    if (!ev->is_string()) return protocol_error(channel_.name(), "event name is not a string");
    QmpEvent e;
    e.name = ev->get<std::string>();
    if (auto d = msg.find("data"); d != msg.end()) e.data = *d;
    if (auto ts = msg.find("timestamp"); ts != msg.end() && ts->is_object()) {
      auto s = ts->find("seconds"), us = ts->find("microseconds");
      if (s != ts->end() && s->is_number() && us != ts->end() && us->is_number())
        e.timestamp = s->get<double>() + us->get<double>() / 1e6;
    }
    queue_event(std::move(e));
    return ok();
  }
  if (!msg.contains("return") && !msg.contains("error"))
    return protocol_error(channel_.name(), "neither event nor reply: '" + excerpt(line) + "'");
  auto id = msg.find("id");
  // A reply without our id answers a command that already gave up waiting (or one
  // we never sent): drop it.
  if (id == msg.end() || !id->is_number_unsigned() || id->get<uint64_t>() != want_id) return ok();
  *reply = std::move(msg);
  return ok();
}

Result<nlohmann::json> QmpClient::execute(std::string_view command, const json& arguments,
                                          std::chrono::milliseconds timeout) {
  Deadline until = deadline_in(timeout);
  const uint64_t id = next_id_++;
  json req = {{"execute", std::string(command)}, {"id", id}};
  if (!arguments.is_null()) req["arguments"] = arguments;
  const std::string op = "QMP " + std::string(command);
  if (auto w = channel_.write_all(req.dump() + "\n", until); !w)
    return with_context(std::move(w).error(), op);
  std::optional<json> reply;
  while (!reply) {
    auto line = channel_.read_line(until);
    if (!line) return with_context(std::move(line).error(), op);
    MDEVMIG_TRY(handle_line(*line, id, &reply));
  }
  if (auto err = reply->find("error"); err != reply->end()) {
    std::string cls = "?", desc;
    if (err->is_object()) {
      if (auto c = err->find("class"); c != err->end() && c->is_string())
        cls = c->get<std::string>();
      if (auto d = err->find("desc"); d != err->end() && d->is_string())
        desc = d->get<std::string>();
    }
    return Error::make(EREMOTEIO, op, cls + ": " + desc);
  }
  return std::move((*reply)["return"]);
}

Result<void> QmpClient::poll() {
  for (;;) {
    auto line = MDEVMIG_TRY(channel_.try_read_line());
    if (!line) return ok();
    std::optional<json> unused;
    MDEVMIG_TRY(handle_line(*line, 0, &unused));
  }
}

std::vector<QmpEvent> QmpClient::take_events() {
  std::vector<QmpEvent> out(std::make_move_iterator(events_.begin()),
                            std::make_move_iterator(events_.end()));
  events_.clear();
  return out;
}

std::optional<QmpEvent> QmpClient::peek_event(std::string_view name) const {
  for (const auto& e : events_)
    if (e.name == name) return e;
  return std::nullopt;
}

Result<QmpEvent> QmpClient::wait_event(std::string_view name, std::chrono::milliseconds timeout) {
  Deadline until = deadline_in(timeout);
  for (;;) {
    for (auto it = events_.begin(); it != events_.end(); ++it) {
      if (it->name == name) {
        QmpEvent e = std::move(*it);
        events_.erase(it);
        return e;
      }
    }
    auto line = channel_.read_line(until);
    if (!line)
      return with_context(std::move(line).error(), "QMP wait for event " + std::string(name));
    std::optional<json> unused;
    MDEVMIG_TRY(handle_line(*line, 0, &unused));
  }
}

}  // namespace mdevmig::qemu
