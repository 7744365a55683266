"""Contacts sync: personal contacts → each synced user's PBX phonebook, shared mailboxes → the company phonebook.

One way (Microsoft 365 is the source of truth), incremental per contact folder where the cloud offers contact
delta. :mod:`.engine` is the run, :mod:`.reader` reads one mailbox, :mod:`.mapping` and :mod:`.phonebooks` turn
contacts into phonebook entries; :mod:`.tab`, :mod:`.jobs` and :mod:`.feature` are the Contacts tab, the RQ job
and the declaration.
"""
