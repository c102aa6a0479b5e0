"""The entry ``dramatiq`` loads in each worker process: ``dramatiq ragship.queue.worker:setup``.

``ragship worker`` runs it; nothing happens at import, ``setup`` makes the process a worker.
"""

from __future__ import annotations


def setup() -> None:
    """Declare the broker and the ``index_job`` actor from the settings, as Dramatiq's global broker."""
    import logging

    import dramatiq

    from ragship.environment import disable_phone_home, quiet_third_party_progress
    from ragship.queue.actors import declare
    from ragship.settings import get_settings

    logging.getLogger("haystack").setLevel(logging.WARNING)  # one line per component run is noise here
    disable_phone_home()
    quiet_third_party_progress()
    dramatiq.set_broker(declare(get_settings()))
