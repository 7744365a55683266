"""pytest plugin: the ``m365_emulator`` and ``m365_tenant`` fixtures (work in progress)."""
