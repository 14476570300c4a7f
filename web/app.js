// natter's browser client (filled in by the web client work).
