"""Provincial subscriber: one province's cases, in Vietnamese, resumable (consumer group per province).

    from consumers.subscriber import ProvinceSubscriber, TableOutput
    ProvinceSubscriber(bootstrap, registry_url, "02", output=TableOutput()).run(idle_timeout_s=10)
"""
from consumers.subscriber.consume import ProvinceSubscriber, SubscribeResult
from consumers.subscriber.outputs import JsonlOutput, Output, TableOutput, WebhookFailed, WebhookOutput
from consumers.subscriber.provinces import ProvinceChoice, UnknownProvince, resolve
from consumers.subscriber.render import CaseView, table_header, table_row, to_json, view

__all__ = ["ProvinceSubscriber", "SubscribeResult", "JsonlOutput", "Output", "TableOutput", "WebhookFailed",
           "WebhookOutput", "ProvinceChoice", "UnknownProvince", "resolve", "CaseView", "table_header", "table_row",
           "to_json", "view"]
