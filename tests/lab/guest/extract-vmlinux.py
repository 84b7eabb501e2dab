#!/usr/bin/env python3
"""Writes the kernel inside an x86 bzImage as the ELF it was built as (vmlinux).

    extract-vmlinux.py BZIMAGE OUT

The nested guest of tests/lab/guest boots it through QEMU's PVH entry (the kernel's
Xen PVH note, CONFIG_PVH): no firmware loading of a bzImage and no decompression in
the guest, which under TCG in TCG take minutes. The payload is found through the boot
protocol's header (setup_sects at 0x1f1, payload_offset and payload_length at 0x248),
not by searching for a magic number; xz, zstd and gzip payloads are understood.
"""
import gzip
import io
import lzma
import os
import struct
import subprocess
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: extract-vmlinux.py BZIMAGE OUT")
    image = open(sys.argv[1], "rb").read()
    if image[0x202:0x206] != b"HdrS":
        sys.exit(f"{sys.argv[1]}: not a bzImage (no HdrS header)")
    setup_sects = image[0x1f1] or 4
    offset, length = struct.unpack_from("<II", image, 0x248)
    start = (setup_sects + 1) * 512 + offset
    payload = image[start:start + length]
    if payload.startswith(b"\xfd7zXZ\x00"):
        elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
    elif payload.startswith(b"\x28\xb5\x2f\xfd"):
        # The build appends the uncompressed size after the frame: zstd stops at the
        # frame's end and complains about the rest, so its status is not the test.
        elf = subprocess.run(["zstd", "-qdc"], input=payload, capture_output=True).stdout
    elif payload.startswith(b"\x1f\x8b"):
        elf = gzip.GzipFile(fileobj=io.BytesIO(payload)).read()
    else:
        sys.exit(f"{sys.argv[1]}: payload compression not understood ({payload[:6].hex()})")
    if not elf.startswith(b"\x7fELF"):
        sys.exit(f"{sys.argv[1]}: the payload did not decompress to an ELF image")
    with open(sys.argv[2] + ".tmp", "wb") as f:
        f.write(elf)
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])


if __name__ == "__main__":
    main()
