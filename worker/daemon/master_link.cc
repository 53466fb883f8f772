#include "worker/daemon/master_link.h"

#include <algorithm>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/rpc/status_convert.h"
#include "grpcpp/grpcpp.h"
#include "worker/daemon/worker_log.h"

namespace det::worker {
namespace {

constexpr absl::Duration kDefaultMasterHeartbeat = absl::Seconds(5);
constexpr absl::Duration kTick = absl::Milliseconds(100);

// Errors before Welcome that another attempt would only repeat.
bool IsRefusal(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kUnimplemented:
      return true;
    default:
      return false;
  }
}

}  // namespace

MasterLink::MasterLink(Options options, Outbox* outbox, Callbacks callbacks)
    : options_(std::move(options)),
      outbox_(outbox),
      callbacks_(std::move(callbacks)) {
  grpc::ChannelArguments args;
  // Our own backoff decides when to retry; keep gRPC's reconnects prompt.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 256 << 20);
  std::shared_ptr<grpc::ChannelCredentials> creds =
      grpc::InsecureChannelCredentials();
  if (!options_.tls_ca_pem.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options_.tls_ca_pem;
    creds = grpc::SslCredentials(ssl);
    if (!options_.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options_.tls_server_name);
    }
  }
  channel_ = grpc::CreateCustomChannel(options_.target, creds, args);
  stub_ = v1::WorkerService::NewStub(channel_);
}

MasterLink::~MasterLink() { Stop(); }

void MasterLink::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void MasterLink::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (current_ != nullptr) current_->TryCancel();
  }
  outbox_->Interrupt();
  if (thread_.joinable()) thread_.join();
}

bool MasterLink::welcomed() const {
  absl::MutexLock lock(&mu_);
  return welcomed_;
}

void MasterLink::Loop() {
  absl::BitGen rng;
  absl::Duration backoff = options_.min_backoff;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    bool welcomed = false;
    bool acked = false;
    absl::Status s = RunStream(&welcomed, &acked);
    {
      absl::MutexLock lock(&mu_);
      welcomed_ = false;
      if (stopping_) return;
    }
    if (!welcomed && IsRefusal(s.code())) {
      WorkerLog("the master at %s refused this worker: %s", options_.target,
                s.ToString());
      if (callbacks_.on_refused) callbacks_.on_refused(s);
      return;
    }
    // A stream that got something stored was healthy: come back at once.
    // One that ended before any ack (the master failing to store the first
    // message it resends, say) keeps backing off, so a master that cannot
    // store is not hammered with reconnects.
    if (welcomed && acked) backoff = options_.min_backoff;
    // Full jitter in [backoff/2, backoff]: workers that lost the same
    // master do not all come back at the same instant.
    const absl::Duration wait = backoff * absl::Uniform(rng, 0.5, 1.0);
    WorkerLog("%s; reconnecting to %s in %s",
              welcomed
                  ? absl::StrCat("stream to the master ended: ", s.ToString())
                  : absl::StrCat("cannot reach the master: ", s.ToString()),
              options_.target, absl::FormatDuration(wait));
    backoff = std::min(backoff * 2, options_.max_backoff);
    absl::MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_;
    };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), wait)) return;
  }
}

absl::Status MasterLink::RunStream(bool* welcomed_out, bool* acked_out) {
  grpc::ClientContext ctx;
  if (!options_.token.empty()) {
    ctx.AddMetadata("authorization", "Bearer " + options_.token);
  }
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::CancelledError("stopping");
    current_ = &ctx;
  }
  auto stream = stub_->Connect(&ctx);

  // State shared by this connection's threads.
  struct Shared {
    absl::Mutex mu;
    bool welcomed = false;
    bool reader_done = false;
    bool writer_done = false;
    bool acked = false;
    absl::Duration heartbeat;
    absl::Time last_heard = absl::Now();
  } sh;

  v1::WorkerMessage hello;
  *hello.mutable_hello() = callbacks_.make_hello();
  hello.set_seq(0);
  const bool hello_sent = stream->Write(hello);

  std::thread reader([&] {
    v1::MasterMessage m;
    while (hello_sent && stream->Read(&m)) {
      bool welcomed;
      {
        absl::MutexLock lock(&sh.mu);
        sh.last_heard = absl::Now();
        welcomed = sh.welcomed;
      }
      if (m.has_welcome()) {
        if (welcomed) continue;  // only the first one counts
        outbox_->Restart(m.welcome().last_seq());
        if (callbacks_.on_welcome) callbacks_.on_welcome(m.welcome());
        const absl::Duration master_hb =
            m.welcome().heartbeat_interval_ms() > 0
                ? absl::Milliseconds(m.welcome().heartbeat_interval_ms())
                : kDefaultMasterHeartbeat;
        absl::MutexLock lock(&sh.mu);
        sh.heartbeat = options_.heartbeat > absl::ZeroDuration()
                           ? options_.heartbeat
                           : std::max(absl::Milliseconds(50), master_hb / 2);
        sh.welcomed = true;
      } else if (!welcomed) {
        continue;  // nothing counts before Welcome
      } else if (m.has_ack()) {
        outbox_->Ack(m.ack().seq());
        absl::MutexLock lock(&sh.mu);
        sh.acked = true;
      } else if (callbacks_.on_message) {
        callbacks_.on_message(m);
      }
    }
    absl::MutexLock lock(&sh.mu);
    sh.reader_done = true;
  });

  // Wait for Welcome.
  bool welcomed = false;
  {
    absl::MutexLock lock(&sh.mu);
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(sh.mu) {
      return sh.welcomed || sh.reader_done;
    };
    sh.mu.AwaitWithTimeout(absl::Condition(&ready), options_.welcome_timeout);
    welcomed = sh.welcomed;
  }
  absl::Status ended;
  std::thread writer;
  if (welcomed) {
    *welcomed_out = true;
    {
      absl::MutexLock lock(&mu_);
      welcomed_ = true;
    }
    WorkerLog("connected to the master at %s", options_.target);
    writer = std::thread([&] {
      absl::Duration period;
      {
        absl::MutexLock lock(&sh.mu);
        period = sh.heartbeat;
      }
      absl::Time next_heartbeat = absl::Now() + period;
      for (;;) {
        {
          absl::MutexLock lock(&sh.mu);
          if (sh.reader_done || sh.writer_done) break;
        }
        {
          absl::MutexLock lock(&mu_);
          if (stopping_) break;
        }
        const absl::Time now = absl::Now();
        if (now >= next_heartbeat) {
          v1::WorkerMessage hb;
          hb.mutable_heartbeat()->set_time_us(absl::ToUnixMicros(now));
          outbox_->AddEphemeral(std::move(hb));
          next_heartbeat = now + period;
        }
        auto m = outbox_->Next(std::min(kTick, next_heartbeat - now));
        if (m && !stream->Write(*m)) break;
      }
      absl::MutexLock lock(&sh.mu);
      sh.writer_done = true;
    });
    // Supervise: end the stream when either side is done, when stopping,
    // or when the master has been silent for too long.
    for (;;) {
      absl::MutexLock lock(&sh.mu);
      auto over = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(sh.mu) {
        return sh.reader_done || sh.writer_done;
      };
      if (sh.mu.AwaitWithTimeout(absl::Condition(&over), kTick * 2)) break;
      const absl::Duration silence_limit =
          std::max(absl::Seconds(10), sh.heartbeat * 4);
      if (absl::Now() - sh.last_heard > silence_limit) {
        ended = absl::UnavailableError(
            absl::StrCat("the master sent nothing for ",
                         absl::FormatDuration(absl::Now() - sh.last_heard)));
        break;
      }
      absl::MutexLock link_lock(&mu_);
      if (stopping_) break;
    }
  } else {
    absl::MutexLock lock(&sh.mu);
    if (!sh.reader_done) {
      ended = absl::DeadlineExceededError(
          absl::StrCat("no Welcome from the master within ",
                       absl::FormatDuration(options_.welcome_timeout)));
    }
  }

  // Cancel only a call that is still open: cancelling one the master has
  // already ended would replace its status (a refusal) with CANCELLED.
  bool reader_finished;
  {
    absl::MutexLock lock(&sh.mu);
    reader_finished = sh.reader_done;
  }
  if (!reader_finished) ctx.TryCancel();
  outbox_->Interrupt();
  {
    absl::MutexLock lock(&sh.mu);
    sh.writer_done = true;
  }
  if (writer.joinable()) writer.join();
  reader.join();
  grpc::Status status = stream->Finish();
  {
    absl::MutexLock lock(&mu_);
    current_ = nullptr;
  }
  {
    absl::MutexLock lock(&sh.mu);
    *acked_out = sh.acked;
  }
  if (!ended.ok()) return ended;
  if (!status.ok()) return FromGrpcStatus(status);
  return absl::UnavailableError("the master closed the stream");
}

}  // namespace det::worker
