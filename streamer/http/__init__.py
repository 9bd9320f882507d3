"""The HTTP side: REST handlers, their forms and portraits, outputs on disk, the error and
metrics middleware, the OpenAPI document and the demo page's static routes."""
