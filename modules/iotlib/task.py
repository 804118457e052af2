# One background task owned by a manager: start() creates it unless it runs, stop() cancels
# it. Shared by every manager with an async start()/stop() lifecycle.
import asyncio


class BackgroundTask:
    def __init__(self):
        self.task = None

    def start(self, coro_factory=None):
        """Run coro_factory() as a task unless one is already running (a factory, so that a
        second start() builds no coroutine).

        Without a factory it is the manager's loop calling, first thing: the task the loop
        runs in (start()'s, or the caller's own, `asyncio.create_task(network.monitor())` as
        the seed writes it) becomes the one stop() cancels. Returns False when another task
        already runs the loop: the caller returns at once (one loop per manager). One
        method, not two: every manager holds one of these, and a method costs heap."""
        if coro_factory is None:
            me = asyncio.current_task()
            if self.task is not None and self.task is not me and not self.task.done():
                return False
            self.task = me
            return True
        if self.task is None:
            self.task = asyncio.create_task(coro_factory())

    def stop(self):
        """Cancel the task, if any; start() may run it again."""
        if self.task is not None:
            self.task.cancel()
            self.task = None

    def running(self):
        return self.task is not None
