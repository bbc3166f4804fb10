"""The parser of ffmpeg's stream report (``ffmpeg -hide_banner -i FILE``), on canned text: what
each kind of film reports, and what it must become. No ffmpeg runs here."""

from __future__ import annotations

import pytest

from moviebarcode.errors import InputError
from moviebarcode.probe import parse_ffmpeg_info

TRAILER = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'trailer.mp4':
  Metadata:
    major_brand     : isom
  Duration: 00:00:55.13, start: 0.000000, bitrate: 1135 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), \
1280x720, 1007 kb/s, 24 fps, 24 tbr, 12288 tbn (default)
    Metadata:
      handler_name    : VideoHandler
  Stream #0:1[0x2](und): Audio: mp3 (mp3float) (mp4a / 0x6134706D), 44100 Hz, stereo, fltp
At least one output file must be specified
"""

THEORA_AFTER_DATA = """\
[in#0/ogg @ 0x55bc2ebec040] Broken file, keyframe not correctly marked.
Input #0, ogg, from 'calais.ogv':
  Duration: 00:00:19.20, start: 0.000000, bitrate: 169 kb/s
  Stream #0:0: Data: none
  Stream #0:1: Video: theora, yuv420p, 214x160 [SAR 1:1 DAR 107:80], 15 tbr, 15 tbn
"""

HDR_PHONE = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'phone.mov':
  Duration: 01:02:03.50, start: 0.023000, bitrate: 20000 kb/s
  Stream #0:0[0x1](und): Video: hevc (Main 10) (hvc1 / 0x31637668), \
yuv420p10le(tv, bt2020nc/bt2020/smpte2084), 3840x2160, 19000 kb/s, 29.97 fps, 29.97 tbr, \
600 tbn (default)
    Side data:
      DOVI configuration record: version: 1.0, profile: 8, level: 9
      displaymatrix: rotation of -90.00 degrees
"""

ANAMORPHIC_DVD = """\
Input #0, mpeg, from 'dvd.vob':
  Duration: 00:42:00.00, start: 0.280000, bitrate: 5000 kb/s
  Stream #0:0[0x1e0]: Video: mpeg2video (Main), yuv420p(tv, top first), 720x576 \
[SAR 64:45 DAR 16:9], 25 fps, 25 tbr, 90k tbn
"""

COVER_ART_FIRST = """\
Input #0, matroska,webm, from 'film.mkv':
  Duration: N/A, start: 0.000000, bitrate: N/A
  Stream #0:0: Video: mjpeg (Baseline), yuvj420p(pc, bt470bg/unknown/unknown), 600x800, \
90k tbr, 90k tbn (attached pic)
  Stream #0:1: Video: vp9 (Profile 0), yuv420p(tv, bt709), 1920x1080, SAR 1:1 DAR 16:9, \
23.98 fps, 23.98 tbr, 1k tbn
"""

AUDIO_ONLY = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'song.m4a':
  Duration: 00:00:02.02, start: 0.000000, bitrate: 131 kb/s
  Stream #0:0[0x1](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp
"""

NOT_A_MOVIE = """\
[in#0 @ 0x5599c0d3c2c0] Error opening input: Invalid data found when processing input
Error opening input file notes.txt.
Error opening input files: Invalid data found when processing input
"""


def test_plain_h264():
    m = parse_ffmpeg_info(TRAILER, "trailer.mp4")
    assert (m.codec, m.pix_fmt, m.width, m.height) == ("h264", "yuv420p", 1280, 720)
    assert m.duration == pytest.approx(55.13) and m.start_time == 0.0
    assert m.fps == 24 and m.sar == (1, 1) and m.rotation == 0 and m.stream == 0
    assert m.bit_depth == 8 and not m.hdr


def test_video_after_a_data_stream_is_the_first_video_stream():
    m = parse_ffmpeg_info(THEORA_AFTER_DATA, "calais.ogv")
    assert (m.codec, m.width, m.height, m.stream) == ("theora", 214, 160, 0)
    assert m.fps == 15  # from tbr: no fps field


def test_hdr_ten_bit_rotated_phone_video():
    m = parse_ffmpeg_info(HDR_PHONE, "phone.mov")
    assert m.duration == pytest.approx(3723.5) and m.start_time == pytest.approx(0.023)
    assert m.bit_depth == 10 and m.hdr and m.color_transfer == "smpte2084"
    assert (m.color_space, m.color_primaries, m.color_range) == ("bt2020nc", "bt2020", "tv")
    assert m.rotation == 90  # ffmpeg's -90 counter-clockwise is 90 clockwise
    assert m.display_size == (2160, 3840)
    assert m.fps == pytest.approx(29.97)


def test_anamorphic_sar_sets_the_display_size():
    m = parse_ffmpeg_info(ANAMORPHIC_DVD, "dvd.vob")
    assert m.sar == (64, 45) and m.display_size == (1024, 576)
    assert m.fps == 25 and m.color_range == "tv" and m.color_space is None


def test_cover_art_is_skipped():
    m = parse_ffmpeg_info(COVER_ART_FIRST, "film.mkv")
    assert (m.codec, m.width, m.stream) == ("vp9", 1920, 1)
    assert m.duration is None and m.fps == pytest.approx(23.98)
    assert m.color_space == m.color_primaries == m.color_transfer == "bt709"


@pytest.mark.parametrize(
    "text, words",
    [(AUDIO_ONLY, "no video stream"), (NOT_A_MOVIE, "invalid data found"), ("", "not a movie")],
)
def test_files_without_video(text, words):
    with pytest.raises(InputError, match="(?i)" + words):
        parse_ffmpeg_info(text, "x")
