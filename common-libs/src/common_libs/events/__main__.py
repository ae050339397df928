"""``python -m common_libs.events``: create or update the fleet's streams (see ``streams``)."""

from common_libs.events.streams import main

main()
