# Cap'n Proto schemas of mdevmig's userspace formats (DESIGN.md §7):
#   - the save file (`mdevmig save`): a fixed preamble, a FileHeader, then Frames
#     (Chunk* then one Trailer);
#   - the wire protocol between a migration source and destination: WireMessage.
# Every enum starts with an invalid zero value, so a zeroed or truncated field never
# decodes as a meaningful one. Decoders (migration/schema/codec.h) check every value.
@0x89180f57efd2fc5d;

$import "/capnp/c++.capnp".namespace("mdevmig::schema::capnp");

# Which interface carried the device's state.
enum Channel {
  invalid @0;
  v2StopCopy @1;   # VFIO v2 migration, STOP_COPY only
  v2PreCopy @2;    # VFIO v2 migration with PRE_COPY (Linux 6.2+)
  v1Region @3;     # the v1 migration region (VFIO_REGION_TYPE_MIGRATION_DEPRECATED)
}

# When a chunk of the device stream was produced.
enum Phase {
  invalid @0;
  preCopy @1;      # device running
  stopCopy @2;     # device stopped
}

# mdevmig's own compatibility descriptor (the COMPAT record of the device stream).
struct Compat {
  streamVersion @0 :UInt32;
  modelVersion @1 :UInt32;
  typeId @2 :UInt32;
  pageSize @3 :UInt32;
  memSize @4 :UInt64;
}

# What a state stream came from (and what it may be loaded into).
struct DeviceIdentity {
  uuid @0 :Text;            # mdev UUID, or "" for a device passed as an fd
  sysfsPath @1 :Text;       # /sys/bus/mdev/devices/UUID or ""
  deviceApi @2 :Text;       # "vfio-pci", ...
  vfioFlags @3 :UInt32;     # VFIO_DEVICE_GET_INFO flags
  migrationFlags @4 :UInt64;  # VFIO_DEVICE_FEATURE_MIGRATION flags
  pciVendor @5 :UInt16;     # from config space; 0 if the device is not PCI
  pciDevice @6 :UInt16;
  pciSubVendor @7 :UInt16;
  pciSubDevice @8 :UInt16;
  regionSizes @9 :List(UInt64);  # by region index
  compat @10 :Compat;       # present for mdevmig devices only
}

struct FileHeader {
  magic @0 :UInt64;         # kFileMagic again, inside the checksummed bytes
  formatVersion @1 :UInt32;
  toolVersion @2 :Text;
  device @3 :DeviceIdentity;
  channel @4 :Channel;
  chunkSize @5 :UInt32;     # largest chunk payload in this file
  createdUnixNs @6 :UInt64;
  hostname @7 :Text;
}

# A piece of the raw device stream.
struct Chunk {
  seq @0 :UInt64;           # 0, 1, 2, ... with no gaps
  offset @1 :UInt64;        # of data[0] in the device stream
  phase @2 :Phase;
  data @3 :Data;
  xxh3 @4 :UInt64;          # XXH3-64 of data
}

struct Trailer {
  chunks @0 :UInt64;
  streamBytes @1 :UInt64;
  streamXxh3 @2 :UInt64;    # XXH3-64 over the chunks' xxh3 values in order: the whole
                            # stream's identity, without another pass over its bytes
  headerXxh3 @3 :UInt64;    # the preamble's header checksum, again
  finishedUnixNs @4 :UInt64;
  precopyBytes @5 :UInt64;
  stopcopyBytes @6 :UInt64;
  framesXxh3 @7 :UInt64;    # XXH3-64 of every frame's bytes before the trailer, the chunk
                            # data left out (its own xxh3 covers it), so a flip anywhere
                            # (unused bits and padding included) is found
}

# One frame after the header of a save file.
struct Frame {
  union {
    invalid @0 :Void;
    chunk @1 :Chunk;
    trailer @2 :Trailer;
  }
}

# ---- wire protocol ----------------------------------------------------------------
#
# source -> destination: hello; destination -> source: hello (compatible) or error.
# Then source -> destination: chunk and guestPages in any order, switchover (the
# source device is stopped), more chunks and guestPages, done. The destination loads
# the stream, starts its device and answers done (or error). Either side may send
# error at any time; a dropped connection counts as an error (the source goes back to
# RUNNING).
#
# Pre-copy sync (both hellos say `precopySync`; an older peer leaves it false and neither
# side sends these): during pre-copy (between chunks, and at the end of an iteration) the
# source may send sync and go on without waiting; the destination answers synced once
# everything before it reached its device, with what its own switchover costs. The
# source reads answers as they come (several may be outstanding, answered in order; it
# reads the last ones before done). From the bytes they confirm and when they arrive it
# knows the rate data really reaches the destination's device at, and what the
# destination's finish costs.

enum Role {
  invalid @0;
  source @1;
  destination @2;
}

enum ErrorCode {
  invalid @0;
  incompatible @1;   # hello check failed
  corrupt @2;        # a message or the stream failed validation
  device @3;         # a device or VFIO call failed
  cancelled @4;      # the peer gave up (signal, user)
  internal @5;
}

struct Hello {
  magic @0 :UInt64;           # kWireMagic
  protocolVersion @1 :UInt32;
  role @2 :Role;
  toolVersion @3 :Text;
  device @4 :DeviceIdentity;
  channel @5 :Channel;        # source: the channel it saves with
  guestMemBytes @6 :UInt64;   # the tool's DMA-mapped guest memory (0: none)
  guestIova @7 :UInt64;
  pageSize @8 :UInt32;        # of guestPages
  precopySync @9 :Bool;       # sends (source) / answers (destination) sync; false: older peer
}

# Pages of the source's guest memory: runs of pages, their bytes back to back.
struct PageRun {
  first @0 :UInt64;
  count @1 :UInt32;
}

struct GuestPages {
  iteration @0 :UInt32;
  runs @1 :List(PageRun);
  data @2 :Data;              # sum(count) * pageSize bytes
  xxh3 @3 :UInt64;            # XXH3-64 of data
}

struct Switchover {
  iterations @0 :UInt32;
  precopyBytes @1 :UInt64;
  reason @2 :Text;
}

struct Done {
  chunks @0 :UInt64;
  streamBytes @1 :UInt64;
  streamXxh3 @2 :UInt64;    # as in Trailer: over the chunks' xxh3 values
  guestPagesSent @3 :UInt64;
}

struct Sync {
  seq @0 :UInt64;             # 1, 2, ... in the order sent
}

struct Synced {
  seq @0 :UInt64;             # the sync answered
  loadedBytes @1 :UInt64;     # device stream and guest bytes loaded so far
  loadSeconds @2 :Float64;    # no longer measured: 0 (it was the destination's own time
                              # for an iteration's load; the source now times answers)
  finishSeconds @3 :Float64;  # the destination's estimate of its commit and start
}

struct WireError {
  code @0 :ErrorCode;
  message @1 :Text;
}

struct WireMessage {
  union {
    invalid @0 :Void;
    hello @1 :Hello;
    chunk @2 :Chunk;
    guestPages @3 :GuestPages;
    switchover @4 :Switchover;
    done @5 :Done;
    error @6 :WireError;
    sync @7 :Sync;
    synced @8 :Synced;
  }
}
