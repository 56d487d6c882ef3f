"""Rebuild data/*.wav from the Debian packages named in data/README.md (run as root after
`apt-get install -y pocketsphinx-testdata codec2-examples alsa-utils`)."""

import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

DATA = Path(__file__).resolve().parents[1] / "data"
LIBRIVOX = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-{}.wav"
GAP_S = 0.15  # silence between the joined ALSA announcements


def main() -> None:
    shutil.copy(LIBRIVOX.format("0870"), DATA / "librivox_male_0870_16k.wav")
    shutil.copy(LIBRIVOX.format("0880"), DATA / "librivox_male_0880_16k.wav")
    shutil.copy("/usr/share/codec2/wav/hts2a.wav", DATA / "codec2_hts2a_female_8k.wav")
    parts = []
    for name in ("Front_Left", "Front_Center", "Front_Right"):
        audio, sr = sf.read(f"/usr/share/sounds/alsa/{name}.wav", dtype="int16")
        assert sr == 48000, f"{name}: expected 48 kHz, found {sr}"
        parts += [audio, np.zeros(int(GAP_S * sr), np.int16)]
    sf.write(DATA / "alsa_front_female_48k.wav", np.concatenate(parts[:-1]), 48000, subtype="PCM_16")


if __name__ == "__main__":
    main()
