"""The Textual dashboard over the lab's Session API. Holds no broker logic.

from tui import make_app      # the one factory: `lab tui` and the tests use it
"""

from tui.app import BrokerLabApp, make_app

__all__ = ["BrokerLabApp", "make_app"]
