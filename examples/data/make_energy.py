#!/usr/bin/env python3
"""Writes examples/data/energy.csv, the small data file of docs/guide/own-data.md: 2000 hourly
rows of a made-up city's electricity load (`load_mw`, the target) with the weather of the hour and
of the three hours before it (strongly collinear), wind, humidity, the hour of day as a sine and a
cosine, and two text columns (`timestamp`, `station`) that sweep leaves out. Synthetic, from a
fixed seed: running this again writes the same bytes. Standard library only.

Usage: python3 examples/data/make_energy.py   (from the repository root)
"""
import csv
import math
import random
from datetime import datetime, timedelta
from pathlib import Path

ROWS = 2000
rng = random.Random(20261207)


def main():
    start = datetime(2026, 1, 5)
    ar, temps = 0.0, []
    for h in range(ROWS + 3):  # temps[h] is the temperature h - 3 hours after the start
        ar = 0.95 * ar + rng.gauss(0.0, 0.8)
        temps.append(8.0 + 6.0 * math.sin(2 * math.pi * (((h - 3) % 24) - 9) / 24) + ar)
    out = Path(__file__).with_name("energy.csv")
    with out.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["timestamp", "station", "temp_c", "temp_lag1", "temp_lag2", "temp_lag3",
                    "humidity", "wind_ms", "hour_sin", "hour_cos", "load_mw"])
        for i in range(ROWS):
            h = i + 3
            t, t1, t2, t3 = temps[h], temps[h - 1], temps[h - 2], temps[h - 3]
            hour = i % 24
            s, c = math.sin(2 * math.pi * hour / 24), math.cos(2 * math.pi * hour / 24)
            humidity = min(100.0, max(20.0, 70.0 - 2.0 * (t - 8.0) + rng.gauss(0.0, 5.0)))
            wind = abs(rng.gauss(4.0, 2.0))
            load = (640.0 - 7.0 * t + 3.0 * t1 + 2.0 * t3 + 0.4 * humidity - 2.5 * wind
                    - 35.0 * c + 12.0 * s + rng.gauss(0.0, 12.0))
            stamp = (start + timedelta(hours=i)).strftime("%Y-%m-%dT%H:00")
            station = "north" if (i // 500) % 2 == 0 else "south"
            w.writerow([stamp, station, f"{t:.3f}", f"{t1:.3f}", f"{t2:.3f}", f"{t3:.3f}",
                        f"{humidity:.1f}", f"{wind:.2f}", f"{s:.4f}", f"{c:.4f}", f"{load:.2f}"])
    print(f"wrote {out} ({ROWS} rows)")


if __name__ == "__main__":
    main()
