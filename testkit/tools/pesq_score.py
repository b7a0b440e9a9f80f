#!/usr/bin/env python3
"""Score a recording against its reference with ITU-T P.862 (PyPI `pesq`).

    pesq_score.py REF.wav DEG.wav --mode wb|nb

Both files are converted to mono 16 kHz (wb) or 8 kHz (nb) with sox. The recording is shifted
by the delay that maximises the cross-correlation and cut to the reference's length, because a
long lead-in of silence (call set-up, jitter buffer) lowers P.862 scores for no audible reason.
Prints one JSON object: mos (MOS-LQO), delay_ms, correlation (normalised peak), ref_s, deg_s.
"""
import argparse
import json
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf
from pesq import pesq
from scipy.signal import correlate


def load(path, rate):
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(["sox", path, "-r", str(rate), "-c", "1", "-b", "16", tmp.name],
                       check=True, stderr=subprocess.DEVNULL)
        data, _ = sf.read(tmp.name, dtype="float64")
    return data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ref")
    ap.add_argument("deg")
    ap.add_argument("--mode", choices=["wb", "nb"], default="wb")
    args = ap.parse_args()
    rate = 16000 if args.mode == "wb" else 8000
    ref, deg = load(args.ref, rate), load(args.deg, rate)
    if len(deg) < rate // 2 or not np.any(deg):
        print(json.dumps({"mos": 0.0, "error": "the recording is empty or silent",
                          "deg_s": round(len(deg) / rate, 2)}))
        return 0
    corr = correlate(deg, ref, mode="full", method="fft")
    lag = int(np.argmax(corr)) - (len(ref) - 1)
    aligned = deg[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag), deg])
    aligned = aligned[:len(ref)]
    if len(aligned) < len(ref):
        aligned = np.concatenate([aligned, np.zeros(len(ref) - len(aligned))])
    window = deg[max(lag, 0):max(lag, 0) + len(ref)]
    peak = float(np.max(corr) / (np.linalg.norm(ref) * np.linalg.norm(window) + 1e-12))
    print(json.dumps({
        "mos": round(float(pesq(rate, ref, aligned, args.mode)), 3),
        "mode": args.mode,
        "delay_ms": round(1000 * lag / rate, 1),
        "correlation": round(peak, 3),
        "ref_s": round(len(ref) / rate, 2),
        "deg_s": round(len(deg) / rate, 2),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
