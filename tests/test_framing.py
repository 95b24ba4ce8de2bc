"""Frames of the serial instruments against byte strings written by hand from devices.md."""

from __future__ import annotations

import pytest

from linectl.drivers.framing import (
    NHA_READ,
    NHT_CLEAR_PEAKS,
    NHT_PEAKS,
    NHT_REALTIME,
    NHT_ZERO,
    BadChecksum,
    BadFrame,
    GasFrame,
    HltError,
    HltResult,
    NhaReply,
    NhaStatus,
    ShortFrame,
    SmokeFrame,
    decode_gas_frame,
    decode_hlt,
    decode_nha_reply,
    decode_nht_echo,
    decode_smoke_frame,
    encode_gas_frame,
    encode_hlt,
    encode_smoke_frame,
    hlt_measure,
    nht_command,
    nht_splitter,
    parse_hlt_command,
    parse_hlt_reply,
    parse_hlt_request,
    parse_nht_request,
    split_gas_frame,
    split_hlt,
)

# --- nha503 ------------------------------------------------------------------------
# 06 | HC 50 | CO 0.15 | CO2 14.80 | O2 0.20 | NO 100 | RPM 2500 | OIL_T -10.0 |
# FLOW 12.0 | STATUS 0 | LAMBDA 1.000 | CS = sum mod 256 = 0x57
NHA_READING = bytes.fromhex("06 0032 000F 05C8 0014 0064 09C4 FF9C 0078 00 03E8 57")


def test_nha_reading_decodes_field_by_field() -> None:
    assert len(NHA_READING) == 21
    f = decode_gas_frame(NHA_READING)
    assert f == GasFrame(
        hc_ppm=50,
        co_pct=0.15,
        co2_pct=14.80,
        o2_pct=0.20,
        no_ppm=100,
        rpm=2500,
        oil_temp_c=-10.0,
        flow_l_min=12.0,
        status=NhaStatus.READY,
        lambda_=1.0,
    )
    assert encode_gas_frame(f) == NHA_READING


def test_nha_status_bits_and_lambda_zero() -> None:
    body = bytearray(NHA_READING[:-1])
    body[17] = 0x11  # warming up + leak check running
    body[18:20] = b"\x00\x00"  # lambda not computable
    frame = bytes(body) + bytes([sum(body) & 0xFF])
    f = decode_gas_frame(frame)
    assert f.status == NhaStatus.WARMING_UP | NhaStatus.LEAK_CHECK_OR_BACK_FLUSH
    assert f.lambda_ == 0.0


def test_nha_bad_checksum_short_and_wrong_start() -> None:
    with pytest.raises(BadChecksum):
        decode_gas_frame(NHA_READING[:-1] + b"\x58")
    flipped = bytearray(NHA_READING)
    flipped[3] ^= 0x04  # a bit flipped on the line
    with pytest.raises(BadChecksum):
        decode_gas_frame(bytes(flipped))
    with pytest.raises(ShortFrame):
        decode_gas_frame(NHA_READING[:15])
    with pytest.raises(BadFrame):
        decode_gas_frame(b"\x15" + NHA_READING[1:])


def test_nha_splitter_waits_for_21_bytes_and_refuses_a_wrong_start() -> None:
    assert split_gas_frame(b"") is None
    assert split_gas_frame(NHA_READING[:20]) is None
    assert split_gas_frame(NHA_READING + b"\xaa") == 21
    with pytest.raises(BadFrame):
        split_gas_frame(b"\x5a\x06")


def test_nha_one_byte_replies_ack_busy_nak() -> None:
    assert NHA_READ == 0x81
    assert decode_nha_reply(b"\x06") is NhaReply.ACCEPTED
    assert decode_nha_reply(b"\x05") is NhaReply.BUSY
    assert decode_nha_reply(b"\x15") is NhaReply.REFUSED
    with pytest.raises(BadFrame):
        decode_nha_reply(b"\x07")


# --- nht6 --------------------------------------------------------------------------


def test_nht_host_frames_sum_to_zero() -> None:
    assert nht_command(NHT_REALTIME) == bytes.fromhex("A5 5B")
    assert nht_command(NHT_PEAKS) == bytes.fromhex("A6 5A")
    assert nht_command(NHT_CLEAR_PEAKS) == bytes.fromhex("A7 59")
    assert nht_command(NHT_ZERO) == bytes.fromhex("A4 5C")


# A5 | N 10.0 % | K 0.25 m^-1 | RPM 750 | OIL_T 80.0 | CS 0xCB (all bytes sum to 0)
NHT_REPLY = bytes.fromhex("A5 0064 0019 02EE 0320 CB")


def test_nht_reply_decodes_and_encodes() -> None:
    f = decode_smoke_frame(NHT_REPLY, NHT_REALTIME)
    assert f == SmokeFrame(NHT_REALTIME, 10.0, 0.25, 750, 80.0)
    assert encode_smoke_frame(f) == NHT_REPLY
    neg = encode_smoke_frame(SmokeFrame(NHT_PEAKS, 0.0, 0.0, 0, -5.5))
    assert neg[7:9] == bytes.fromhex("FFC9") and sum(neg) % 256 == 0


def test_nht_errors() -> None:
    with pytest.raises(BadChecksum):
        decode_smoke_frame(NHT_REPLY[:-1] + b"\xcc", NHT_REALTIME)
    with pytest.raises(ShortFrame):
        decode_smoke_frame(NHT_REPLY[:6], NHT_REALTIME)
    with pytest.raises(BadFrame):
        decode_smoke_frame(NHT_REPLY, NHT_PEAKS)  # the reply to A6 starts with A6
    decode_nht_echo(bytes.fromhex("A7 59"), NHT_CLEAR_PEAKS)
    with pytest.raises(BadChecksum):
        decode_nht_echo(bytes.fromhex("A7 58"), NHT_CLEAR_PEAKS)
    split = nht_splitter(NHT_REALTIME)
    assert split(NHT_REPLY[:9]) is None
    assert split(NHT_REPLY) == 10
    with pytest.raises(BadFrame):
        split(b"\x00" + NHT_REPLY)
    assert nht_splitter(NHT_ZERO)(bytes.fromhex("A4 5C A5")) == 2


def test_nht_request_parsing_drops_bad_and_unknown_frames() -> None:
    assert parse_nht_request(bytes.fromhex("A5 5B")) == (NHT_REALTIME, 2)
    assert parse_nht_request(bytes.fromhex("A5")) == (None, 0)  # wait for the CS
    assert parse_nht_request(bytes.fromhex("A5 5C")) == (None, 2)  # bad CS: no reply
    assert parse_nht_request(bytes.fromhex("B1 4F")) == (None, 1)  # unknown: no reply


# --- hlt-ascii ---------------------------------------------------------------------


def test_hlt_frames_by_hand() -> None:
    # BCC = XOR of the payload bytes and ETX
    assert encode_hlt("RES") == bytes.fromhex("02 52 45 53 03 47")
    assert encode_hlt("ACK") == bytes.fromhex("02 41 43 4B 03 4A")
    assert encode_hlt("ERR,E1") == bytes.fromhex("02 45 52 52 2C 45 31 03 1E")
    assert encode_hlt(hlt_measure("L", "H")) == bytes.fromhex("02 4D 45 41 2C 4C 2C 48 03 4E")
    assert decode_hlt(bytes.fromhex("02 42 55 53 59 03 1E")) == "BUSY"


def test_hlt_result_line() -> None:
    frame = b"\x02RES,L,H,18500,-35,-52,680\x03\x40"
    reply = parse_hlt_reply(decode_hlt(frame))
    assert reply.kind == "RES"
    assert reply.result == HltResult("L", "H", 18500, -35, -52, 680)
    assert parse_hlt_reply("RES,RI,L,0,120,-180,702").result == HltResult(
        "RI", "L", 0, 120, -180, 702
    )
    assert parse_hlt_reply("ERR,E4").error is HltError.NO_MEASUREMENT
    for bad in ("RES,X,H,1,2,3,4", "RES,L,H,1,2,3", "RES,L,H,a,2,3,4", "ERR,E7", "HELLO"):
        with pytest.raises(BadFrame):
            parse_hlt_reply(bad)


def test_hlt_bcc_may_equal_etx() -> None:
    # "AA" XOR ETX = 0x03: the byte after the first ETX is the BCC, whatever it is
    frame = bytes.fromhex("02 41 41 03 03")
    assert split_hlt(frame + b"\x02") == 5
    assert decode_hlt(frame) == "AA"


def test_hlt_errors() -> None:
    with pytest.raises(BadChecksum):
        decode_hlt(bytes.fromhex("02 52 45 53 03 48"))
    with pytest.raises(BadFrame):
        split_hlt(b"RES\x03G")
    assert split_hlt(b"\x02RES") is None
    assert split_hlt(b"\x02RES\x03") is None  # BCC still to come
    with pytest.raises(BadFrame):
        split_hlt(b"\x02" + b"A" * 80)  # no ETX where one must be


def test_hlt_request_parsing_on_the_tester_side() -> None:
    assert parse_hlt_request(b"\x00\xff" + encode_hlt("RST")) == (None, 2, False)
    assert parse_hlt_request(encode_hlt("RST")) == ("RST", 6, False)
    assert parse_hlt_request(bytes.fromhex("02 52 53 54 03 57")) == (None, 6, True)  # bad BCC
    assert parse_hlt_command("MEA,LI,L").lamp == "LI"
    with pytest.raises(BadFrame):
        parse_hlt_command("MEA,X,H")
