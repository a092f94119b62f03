"""core.timeline.timebase: exact frames <-> seconds <-> timecode over 2 hours, drop-frame labels, ms_ceil."""

from fractions import Fraction

import opentimelineio as otio
import pytest
from fixtures.exact_time import exact_ms_up

from captionbridge.core.errors import TimelineError
from captionbridge.core.timeline.timebase import Timebase, parse_rate, rate_label

TWO_HOURS = 2 * 3600

RATES = [
    (Fraction(24000, 1001), False),
    (Fraction(24), False),
    (Fraction(25), False),
    (Fraction(30000, 1001), False),
    (Fraction(30000, 1001), True),
    (Fraction(50), False),
    (Fraction(60000, 1001), False),
    (Fraction(60000, 1001), True),
    (Fraction(60), False),
]


def reference_df_label(frame: int, nominal: int) -> str:
    """SMPTE drop-frame label, computed independently of OTIO (the textbook algorithm)."""
    drop = nominal // 15  # 2 at 29.97, 4 at 59.94
    per_10min = nominal * 600 - drop * 9
    per_min = nominal * 60 - drop
    tens, rem = divmod(frame, per_10min)
    if rem < drop:
        rem = drop  # never happens for the first minute of a block (frames 0..drop-1 exist there)
        adj = 0
    adj = drop * 9 * tens + (drop * ((rem - drop) // per_min) if rem >= nominal * 60 else 0)
    f = frame + adj
    ff = f % nominal
    ss = (f // nominal) % 60
    mm = (f // (nominal * 60)) % 60
    hh = f // (nominal * 3600)
    return f"{hh:02d}:{mm:02d}:{ss:02d};{ff:02d}"


def reference_ndf_label(frame: int, nominal: int) -> str:
    ff = frame % nominal
    ss = (frame // nominal) % 60
    mm = (frame // (nominal * 60)) % 60
    hh = frame // (nominal * 3600)
    return f"{hh:02d}:{mm:02d}:{ss:02d}:{ff:02d}"


def sample_frames(rate: Fraction) -> list[int]:
    """Every frame around each minute boundary plus a stride through 2 hours (about 5k frames per rate)."""
    nominal = round(rate)
    end = int(TWO_HOURS * rate)
    frames = set(range(0, end, 211))
    per_min = nominal * 60 - (nominal // 15 if rate.denominator == 1001 else 0)
    f = 0
    while f < end:
        frames.update(range(max(0, f - 3), min(end, f + 5)))
        f += per_min
    for m in range(0, 121):  # nominal minute boundaries too (NDF and DF differ there)
        base = int(m * 60 * rate)
        frames.update(range(max(0, base - 3), min(end, base + 5)))
    frames.add(end - 1)
    return sorted(frames)


@pytest.mark.parametrize("rate,drop", RATES, ids=lambda v: str(v))
def test_round_trips_over_two_hours(rate, drop):
    tb = Timebase(rate, 0, drop)
    nominal = round(rate)
    for frame in sample_frames(rate):
        seconds = tb.seconds(frame)
        assert isinstance(seconds, Fraction) and seconds * rate == frame
        assert tb.frame_at(seconds) == frame
        assert tb.frame_at(seconds, "round") == frame
        assert tb.frame_at(seconds + Fraction(1, 10**9), "ceil") == frame + 1
        label = tb.timecode(frame)
        expected = reference_df_label(frame, nominal) if drop else reference_ndf_label(frame, nominal)
        assert label == expected, (frame, label, expected)
        assert tb.frame_from_timecode(label) == frame


def test_float_seconds_via_otio_round_to_the_same_frame():
    # words arrive as float seconds: from_seconds(...).round() must land on the frame at 23.976 over 2 hours
    rate = Fraction(24000, 1001)
    tb = Timebase(rate)
    for frame in range(0, int(TWO_HOURS * rate), 1231):
        t = otio.opentime.RationalTime.from_seconds(float(tb.seconds(frame)), float(rate)).round()
        assert int(t.value) == frame


@pytest.mark.parametrize(
    "rate,tc,frame",
    [
        ("24000/1001", "01:00:00:00", 86400),
        ("25", "01:00:00:00", 90000),
        ("50", "01:00:00:00", 180000),
        ("60000/1001", "01:00:00:00", 216000),
    ],
)
def test_start_timecodes_non_drop(rate, tc, frame):
    tb = Timebase.from_start_timecode(rate, tc, False)
    assert tb.start_frame == frame
    assert tb.start_timecode == tc
    assert tb.timecode(0) == tc and tb.timecode(0, absolute=False) == "00:00:00:00"


def test_drop_frame_start_and_labels():
    tb = Timebase.from_start_timecode("29.97", "01:00:00;00", True)
    assert tb.start_frame == 107892
    assert tb.seconds(tb.start_frame) == Fraction(107892 * 1001, 30000)  # 3599.9964 s, not 3600
    assert tb.timecode(0) == "01:00:00;00"
    # 01:00:59;29 is followed by 01:01:00;02 (two labels dropped); 01:10:00;00 exists
    f = tb.frame_from_timecode("01:00:59;29")
    assert tb.timecode(f + 1) == "01:01:00;02"
    assert tb.timecode(tb.frame_from_timecode("01:10:00;00")) == "01:10:00;00"
    with pytest.raises(TimelineError):
        tb.frame_from_timecode("01:01:00;00")
    with pytest.raises(TimelineError):
        Timebase(Fraction(25), 0, True)
    tb59 = Timebase.from_start_timecode("59.94", "01:00:00;00", True)
    assert tb59.start_frame == 215784
    assert tb59.timecode(tb59.frame_from_timecode("01:00:59;59") + 1) == "01:01:00;04"


def test_ms_ceil_puts_every_frame_back_on_itself():
    for rate in (Fraction(24000, 1001), Fraction(30000, 1001), Fraction(25), Fraction(60000, 1001)):
        tb = Timebase(rate)
        late_by_nearest = 0
        for frame in range(0, int(TWO_HOURS * rate), 101):
            ms = tb.ms_ceil(frame)
            assert ms == exact_ms_up(frame, rate), frame
            assert tb.ms_ceil(frame, 10) == exact_ms_up(frame, rate, 10), frame  # ASS centiseconds
            assert Fraction(ms, 1000) >= tb.seconds(frame) > Fraction(ms - 1, 1000)
            assert tb.frame_from_ms(ms) == frame  # an editor flooring ms to frames lands on the frame
            assert tb.is_on_frame(ms)
            nearest = round(tb.seconds(frame) * 1000)
            if tb.frame_from_ms(nearest) != frame:
                late_by_nearest += 1
        if rate.denominator == 1001:
            assert late_by_nearest > 0  # rounding to nearest would have put some captions a frame early


def test_parse_rate_spellings():
    assert parse_rate("23.976") == parse_rate(23.976023976023978) == Fraction(24000, 1001)
    assert parse_rate("29.97 DF") == Fraction(30000, 1001)
    assert parse_rate("24000/1001") == Fraction(24000, 1001)
    assert parse_rate("59.94") == Fraction(60000, 1001)
    assert parse_rate(25.0) == 25 and parse_rate("50") == 50
    assert rate_label(Fraction(30000, 1001), True) == "29.97 DF"
    for bad in ("abc", "0", "-25", "1000", "", "nan"):
        with pytest.raises(TimelineError):
            parse_rate(bad)


def test_samples_per_frame_exact():
    assert Timebase(Fraction(24000, 1001)).sample_at(1, 48000) == 2002
    assert Timebase(Fraction(30000, 1001)).sample_at(1, 48000) == Fraction(8008, 5)  # 1601.6
    assert Timebase(Fraction(24000, 1001)).sample_at(3, 16000) == 2002


@pytest.mark.parametrize("rate,nominal,dropped", [("29.97", 30, 2), ("59.94", 60, 4)])
def test_drop_frame_refuses_every_skipped_label(rate, nominal, dropped):
    """At 29.97 DF labels ;00-;01 and at 59.94 DF labels ;00-;03 of every minute except each tenth do not
    exist. The first label that does exist follows the minute's last frame directly (frame numbers computed
    here)."""
    tb = Timebase.from_start_timecode(rate, "00:00:00;00", True)
    per_min = nominal * 60 - dropped
    per_10min = nominal * 600 - 9 * dropped
    for hour in (0, 1):
        for minute in range(60):
            for ff in range(nominal // 2):
                label = f"{hour:02d}:{minute:02d}:00;{ff:02d}"
                if minute % 10 != 0 and ff < dropped:
                    with pytest.raises(TimelineError, match="does not exist in drop-frame"):
                        tb.frame_from_timecode(label)
                    continue
                tens, m = divmod(hour * 60 + minute, 10)
                # frame of hh:mm:00;ff: whole ten-minute blocks, the block's first minute, later minutes
                frame = (
                    tens * per_10min + (m and nominal * 60 + (m - 1) * per_min) + ff - (dropped if m else 0)
                )
                assert tb.frame_from_timecode(label) == frame, label
                assert tb.timecode(frame) == label
    # the label just past a minute's last frame is the first that exists
    assert tb.timecode(tb.frame_from_timecode(f"00:00:59;{nominal - 1:02d}") + 1) == f"00:01:00;{dropped:02d}"


@pytest.mark.parametrize("rate,drop", RATES, ids=lambda v: str(v))
def test_frame_at_off_grid_times(rate, drop):
    """Times between frame starts: floor keeps the containing frame, round the nearest, ceil the next."""
    tb = Timebase(rate, 0, drop)
    for frame in sample_frames(rate)[::7]:
        start = Fraction(frame) / rate
        for part in (
            Fraction(1, 10**6),
            Fraction(1, 4),
            Fraction(49, 100),
            Fraction(51, 100),
            Fraction(3, 4),
            Fraction(999_999, 10**6),
        ):
            t = start + part / rate
            assert tb.frame_at(t) == frame, (frame, part)
            assert tb.frame_at(float(t)) == frame, (frame, part)  # words arrive as float seconds
            assert tb.frame_at(t, "round") == (frame if part < Fraction(1, 2) else frame + 1), (frame, part)
            assert tb.frame_at(t, "ceil") == frame + 1, (frame, part)
        assert tb.frame_at(start - Fraction(1, 10**9)) == frame - 1
