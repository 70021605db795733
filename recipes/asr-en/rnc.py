"""RNC ProPack method 1, the packer of Revolution Software's games (bass.py reads
Beneath a Steel Sky's recordings with it).

Layout: "RNC" 1, big-endian unpacked and
           packed sizes, CRC-16/ARC of each, a byte this reader skips, the block
           count; then a bit stream read least significant bit first from
           little-endian 16-bit words: 2 bits skipped, and per block three
           Huffman tables (literal run lengths, match distances, match lengths:
           5 bits of code count, 4 bits of length per code, canonical codes) and
           a 16-bit command count; a command is a literal run (its bytes sit in
           the byte stream right after the word the bit reader has reached)
           and, but for the block's last, a match (distance + 1, length + 2).
           Symbols 0 and 1 are values; symbol s >= 2 is 2**(s - 1) plus the
           next s - 1 bits.

"""

from __future__ import annotations

import struct

__all__ = ["RncError", "crc16", "huffman_codes", "rnc_unpack"]


class RncError(Exception):
    """Data that is not RNC method 1, or is damaged."""


RNC = b"RNC\x01"
RNC_HEADER = 18


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = crc >> 1 ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/ARC (reflected polynomial 0xA001, start 0), as RNC headers store."""
    crc = 0
    for byte in data:
        crc = crc >> 8 ^ _CRC[(crc ^ byte) & 0xFF]
    return crc


def huffman_codes(lengths: list[int]) -> list[tuple[int, int, int]]:
    """Canonical codes for per-symbol bit lengths (0: absent), as (length, code
    with its first bit lowest, symbol), shortest first."""
    codes, code = [], 0  # `code` is left-aligned in 16 bits
    for length in range(1, 17):
        for symbol, n in enumerate(lengths):
            if n == length:
                top = code >> (16 - length)
                rev = int(f"{top:0{length}b}"[::-1], 2)
                codes.append((length, rev, symbol))
                code += 1 << (16 - length)
    return codes


class _BitReader:
    """RNC's bit reader over `data` from byte `start`: a window of the next bits
    (at least 16), refilled a little-endian word at a time; `src` is the byte
    where the last word loaded starts, where a literal run's bytes begin."""

    def __init__(self, data: bytes, start: int):
        self.data = data
        self.src = start
        self.window = self._word(start)
        self.extra = 0  # valid bits above the lowest 16

    def _word(self, at: int) -> int:
        return int.from_bytes(self.data[at : at + 2].ljust(2, b"\0"), "little")

    def bits(self, n: int) -> int:
        value = self.window & ((1 << n) - 1)
        if self.extra < n:
            self.src += 2
            self.window |= self._word(self.src) << (16 + self.extra)
            self.extra += 16
        self.window >>= n
        self.extra -= n
        return value

    def literal(self, n: int) -> bytes:
        """n bytes from the byte stream; the bit stream goes on after them."""
        run = self.data[self.src : self.src + n]
        self.src += n
        keep = (1 << self.extra) - 1
        self.window = (self.window & keep | self._word(self.src) << self.extra) & (
            (1 << (16 + self.extra)) - 1
        )
        return run

    def table(self) -> list[tuple[int, int, int]]:
        count = self.bits(5)
        return huffman_codes([self.bits(4) for _ in range(count)])

    def value(self, codes: list[tuple[int, int, int]]) -> int:
        for length, code, symbol in codes:
            if self.window & ((1 << length) - 1) == code:
                self.bits(length)
                if symbol < 2:
                    return symbol
                return self.bits(symbol - 1) | 1 << (symbol - 1)
        raise ValueError("no Huffman code matches the next bits")


def rnc_unpack(data: bytes, name: str = "RNC data") -> bytes:
    """Unpack RNC ProPack method 1 data (layout in the module docstring); a bad
    signature, CRC or stream is an ArchiveError naming `name`."""
    if data[:4] != RNC or len(data) < RNC_HEADER:
        raise RncError(f"{name}: not RNC method 1 data")
    size, packed = struct.unpack_from(">II", data, 4)
    crc_out, crc_in = struct.unpack_from(">HH", data, 12)
    blocks = data[17]
    body = data[RNC_HEADER : RNC_HEADER + packed]
    if len(body) != packed or crc16(body) != crc_in:
        raise RncError(f"{name}: packed data cut or damaged (CRC)")
    out = bytearray()
    bits = _BitReader(data, RNC_HEADER)
    try:
        bits.bits(2)
        for _ in range(blocks):
            raw, dist, lens = bits.table(), bits.table(), bits.table()
            count = bits.bits(16)
            for i in range(count, 0, -1):
                run = bits.value(raw)
                if run:
                    out += bits.literal(run)
                if i > 1:
                    back = bits.value(dist) + 1
                    length = bits.value(lens) + 2
                    if back > len(out):
                        raise ValueError(f"a match reaches {back} bytes back")
                    start = len(out) - back
                    if back >= length:
                        out += out[start : start + length]
                    else:
                        for k in range(length):
                            out.append(out[start + k])
            if len(out) > size:
                raise ValueError(f"more than the {size} bytes announced")
    except ValueError as e:
        raise RncError(f"{name}: bad RNC stream ({e})") from None
    if len(out) != size or crc16(bytes(out)) != crc_out:
        raise RncError(
            f"{name}: unpacked {len(out)} bytes of {size}, or their CRC is wrong"
        )
    return bytes(out)
