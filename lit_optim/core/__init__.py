"""The core: config, groups, schedules, optimizer and scheduler builders, run plan.

Imports torch only; never Lightning, jsonargparse or rich.
"""
