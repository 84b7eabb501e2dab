#!/usr/bin/env python3
"""Says whether a screenshot shows something: png_ink.py PNG [--expect RRGGBB ...]

Decodes the PNG with the standard library (zlib; 8-bit RGB or RGBA, not interlaced, as
Chromium writes its screenshots), then counts the pixels that are not the background
(the colour of the top-left pixel) and the distinct colours. Exit 0 and one line of
figures when the image has ink (at least 0.5% of it, in at least 8 colours, and every
--expect colour somewhere); exit 1 and why when it is blank; exit 2 on a file it cannot
read.
"""
import struct
import sys
import zlib


def decode(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, width = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                raise ValueError(f"depth {depth}, colour type {colour}, interlace {interlace}: not handled")
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
    if width is None:
        raise ValueError("no IHDR")
    raw, stride = zlib.decompress(idat), width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    path = args[0]
    expect = [args[i + 1].lower() for i in range(1, len(args) - 1) if args[i] == "--expect"]
    try:
        width, height, bpp, rows = decode(path)
    except (OSError, ValueError, zlib.error, struct.error) as e:
        print(f"{path}: {e}")
        return 2
    background = rows[0][0:3]
    colours, ink = set(), 0
    for row in rows:
        for x in range(0, width * bpp, bpp):
            px = row[x:x + 3]
            colours.add(px)
            ink += px != background
    share = ink / (width * height)
    missing = [e for e in expect if bytes.fromhex(e) not in colours]
    figures = f"{path}: {width}x{height}, {share:.1%} ink, {len(colours)} colours"
    if share < 0.005 or len(colours) < 8 or missing:
        print(f"{figures}: blank" + (f" (no {', '.join('#' + m for m in missing)})" if missing else ""))
        return 1
    print(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
