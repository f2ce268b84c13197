"""The server as an OAuth 2.1 resource server (issue 13, R24): token verification and the
envelope's OAuth authentication step. It never issues tokens and never passes one upstream."""
