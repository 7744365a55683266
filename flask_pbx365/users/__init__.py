"""User sync: Entra ID users → PBX extensions (full and delta reads, filters, extensions, photos, deprovisioning).

- :mod:`.engine`: the run (plan, mass-change guard, batches) that :mod:`flask_pbx365.runs` executes;
- :mod:`.mapping`, :mod:`.scope`, :mod:`.plan`, :mod:`.extensions`, :mod:`.photos`, :mod:`.guard`: its parts;
- :mod:`.directory`: what the tab's pickers list; :mod:`.tab`: the User Sync tab; :mod:`.jobs`: the RQ job;
- :mod:`.feature`: the declaration :mod:`flask_pbx365.features` lists.
"""
