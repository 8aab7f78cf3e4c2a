"""The processor's one-request confirmation of the clinic keys, and its hold-off after the broker did not answer."""
import asyncio

from topology.processor.app import KeysConfirmer


class Keys:
    def __init__(self):
        self.confirmed = []

    def confirm_as_of(self, moment, ends):
        self.confirmed.append(ends)
        return True


def test_ends_read_confirm_the_keys():
    keys = Keys()

    async def ends():
        return {0: 7}

    asyncio.run(KeysConfirmer(ends, keys, what="t")())
    assert keys.confirmed == [{0: 7}]


def test_after_an_unanswered_request_certificates_go_straight_to_the_follower_for_the_hold_off():
    keys, asked, now = Keys(), [], [100.0]
    answering = asyncio.Event()

    async def ends():
        asked.append(now[0])
        if not answering.is_set():
            await asyncio.sleep(60)  # a broker away: never answers within the timeout
        return {0: 7}

    confirm = KeysConfirmer(ends, keys, what="t", timeout_s=0.05, hold_off_s=10, clock=lambda: now[0])

    async def certificates():
        await confirm()  # times out: hold-off starts at 100
        now[0] = 105.0
        await confirm()  # within the hold-off: no request, no wait
        answering.set()
        now[0] = 110.5
        await confirm()  # past it: asks again, and confirms

    asyncio.run(certificates())
    assert asked == [100.0, 110.5] and keys.confirmed == [{0: 7}]
