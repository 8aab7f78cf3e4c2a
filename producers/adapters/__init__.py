"""One adapter per source system: clinics (file import), payment gateway, identity (population database), police
(licence database); `runner.AdapterSet` runs the request/answer ones together."""
