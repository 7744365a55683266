"""Presence from calendars (3CX): the Outlook *Show as* of the meeting in progress drives the PBX status.

The rules are in :mod:`.rules`, the calendar reading in :mod:`.calendar`, the run in :mod:`.engine`; the
Presence tab in :mod:`.tab`, the RQ job in :mod:`.jobs`, the declaration (checked every minute while enabled) in
:mod:`.feature`.
"""
