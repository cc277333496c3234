"""zephr-desktop: get a real Zephr user's OAuth 2.0 access token without DevTools or curl."""

__version__ = "0.1.0"
