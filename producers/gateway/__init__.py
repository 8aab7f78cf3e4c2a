"""The HTTPS clinic gateway (`gplx-bus clinic serve`): hospitals without Kafka publish signed health certificates
over a JSON API (`http`), decided by `service`, with per-clinic API keys (`credentials`). README: "The clinic
gateway"."""
