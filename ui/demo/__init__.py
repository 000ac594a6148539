"""`spanlake demo`: the whole stack on 127.0.0.1 with a sample app whose traffic tells a story.

story.py is the scenario (pure data), backfill.py writes its history through the collector with past
timestamps, traffic.py is the live instrumented sample app, stack.py starts and stops every process.
"""

from __future__ import annotations
