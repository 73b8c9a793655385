#pragma once
/// @file
/// @brief The one table of message kinds that travel between troupe's ranks.
///
/// Every cross-rank feature adds its kinds here and nowhere else; each record is a typed
/// struct encoded with the wire codec (see the record structs next to their users and the
/// frame layout in messaging/detail/batch.hpp).
#include <cstdint>

namespace troupe::messaging {

/// @brief Kind of one frame. The value is on the wire: append, never renumber.
enum class Kind : std::uint16_t {
  kMail = 1,          ///< messaging: mailbox record (MailRecord): the collectives' traffic
  kBroken = 2,        ///< messaging: the receiver found a bad record from us (BrokenRecord)
  kTask = 3,          ///< executor: a call to run (TaskRecord + the encoded call)
  kResult = 4,        ///< executor: a call's outcome (ResultRecord + value or exception)
  kCancelQueued = 5,  ///< executor: drop the sender's tasks that have not started here
  kPing = 6,          ///< messaging: are you alive? (liveness of a peer this rank waits on)
  kPong = 7,          ///< messaging: the answer to a ping
  kLost = 8,          ///< messaging: a rank was declared lost (LostRecord)
  kObject = 9,        ///< cross-rank objects: a call or notice to one object (ObjectRecord)
  kReply = 10,        ///< cross-rank objects: the answer to a call (ReplyRecord)
  kBlocks = 11,       ///< messaging: a record whose large parts follow as bulk messages (BlocksHead)
};

/// @brief One past the largest kind (handler table size).
inline constexpr std::uint16_t kKindLimit = 12;

/// @brief The kind's name for error messages ("task", "result", ...), or nullptr if unknown.
constexpr const char* kind_name(std::uint16_t k) noexcept {
  switch (static_cast<Kind>(k)) {
    case Kind::kMail:
      return "mail";
    case Kind::kBroken:
      return "broken";
    case Kind::kTask:
      return "task";
    case Kind::kResult:
      return "result";
    case Kind::kCancelQueued:
      return "cancel-queued";
    case Kind::kPing:
      return "ping";
    case Kind::kPong:
      return "pong";
    case Kind::kLost:
      return "lost";
    case Kind::kObject:
      return "object";
    case Kind::kReply:
      return "reply";
    case Kind::kBlocks:
      return "blocks";
  }
  return nullptr;
}

/// @brief True for the messaging layer's own kinds (mailbox, error and liveness notices):
/// clients cannot register handlers for them.
constexpr bool internal(Kind k) noexcept {
  return k == Kind::kMail || k == Kind::kBroken || k == Kind::kPing || k == Kind::kPong || k == Kind::kLost ||
         k == Kind::kBlocks;
}

/// @brief True for kinds that quiescence counts (work of the layers above); the messaging
/// layer's own traffic is not counted, so quiesce() can run on the mailbox.
constexpr bool counted(Kind k) noexcept { return !internal(k); }

}  // namespace troupe::messaging
