# grove_gdb.py — gdb commands that see grove's tasks, parked on their own stacks.
#
#   grove tasks          every unfinished task of every hub (one hub per thread
#                        that uses grove): its name, id, state and what it waits on
#   grove bt TASK        the backtrace of TASK, unwound from the context it saved
#                        when it switched out; TASK is a task's name, task-N, its
#                        id N, or its address (as `grove tasks` prints it)
#   grove bt all         the backtrace of every task
#
# gdb loads this file by itself for programs that use libgrove.so or grove-run's
# preload library (it is installed as their auto-load script), and for programs
# linking libgrove.a (a .debug_gdb_scripts entry names it); `source` it by hand
# otherwise. It reads grove's data structures through their debug information:
# the build's own -g, or Debian's -dbgsym packages of a stripped installation.
#
# How a parked task is unwound: Boost.Context's jump_fcontext (x86-64 System V)
# saves, from the low end, the FPU control words, r12, r13, r14, r15, rbx, rbp
# and the resume address, and the fiber keeps a pointer to that block. `grove bt`
# makes the thread's innermost frame look like the task (sets rip, rsp and the
# callee-saved registers from the block), lets gdb's own unwinder print `bt`,
# and puts the thread's registers back. That needs a live process: a core
# file's registers cannot be set.

import struct

import gdb

_SAVED = ("r12", "r13", "r14", "r15", "rbx", "rbp")


def _string(value):
    """A std::string's contents, read without the libstdc++ printers."""
    data = value["_M_dataplus"]["_M_p"]
    length = int(value["_M_string_length"])
    if length == 0:
        return ""
    return bytes(gdb.selected_inferior().read_memory(data, min(length, 4096))).decode("utf-8", "replace")


def _c_string(value):
    if int(value) == 0:
        return ""
    return value.string(length=-1)


class _Task:
    def __init__(self, thread, hub, task):
        # task: a grove::detail::task_base*; fields are read through the pointer
        # (dereferencing a polymorphic object makes gdb look for its RTTI).
        self.thread = thread
        self.hub = hub
        self.task = task
        self.address = int(task)
        self.id = int(task["id"])
        # extras: a std::unique_ptr<task_extras>, whose first (only) word is the pointer.
        holder = task["extras"]
        extras = holder.address.cast(holder.type.template_argument(0).pointer().pointer()).dereference()
        name = _string(extras["name"]) if int(extras) != 0 else ""
        self.name = name if name else "task-%d" % self.id

    def greenlet(self):
        return self.task["g"]

    def state(self):
        t = self.task
        if not bool(t["started"]):
            return "not started"
        g = self.greenlet()
        if int(g) == int(self.hub["ts"]["current"]):
            return "running"
        parked = g["parked"]
        if int(parked) != 0:
            what = _c_string(parked["what"]) or "a wait"
            on = int(parked["on"])
            return "blocked on %s (0x%x)" % (what, on) if on else "blocked on %s" % what
        return "ready"

    def saved_registers(self):
        """The task's registers from its saved context, or None if it has none
        (running, or not started)."""
        fctx = int(self.greenlet()["ctx"]["fctx_"])
        if fctx == 0:
            return None
        block = bytes(gdb.selected_inferior().read_memory(fctx, 0x40))
        words = struct.unpack("<8Q", block)
        regs = dict(zip(_SAVED, words[1:7]))
        regs["rip"] = words[7]
        regs["rsp"] = fctx + 0x40
        return regs


class _cplusplus:
    """Evaluates grove's C++ names even when the selected frame is C code."""

    def __enter__(self):
        self.language = gdb.parameter("language")
        gdb.execute("set language c++", to_string=True)

    def __exit__(self, *exc):
        gdb.execute("set language %s" % self.language, to_string=True)
        return False


def _hubs():
    """[(thread, hub_state)] for every thread of the inferior that has a hub."""
    try:
        hub_state = gdb.lookup_type("grove::detail::hub_state")
    except gdb.error:
        raise gdb.GdbError("grove: no debug information for grove::detail::hub_state "
                           "(build grove with -g, or install its -dbgsym packages)")
    inferior = gdb.selected_inferior()
    if inferior.pid == 0:
        raise gdb.GdbError("grove: the program is not running")
    selected = gdb.selected_thread()
    frame = gdb.selected_frame() if selected is not None else None
    hubs = []
    try:
        for thread in sorted(inferior.threads(), key=lambda t: t.num):
            thread.switch()
            try:
                hub = gdb.parse_and_eval("grove::detail::tls_hub")
            except gdb.error:
                continue  # no grove on this thread (or its TLS is unreadable)
            if int(hub) != 0:
                hubs.append((thread, hub.cast(hub_state.pointer()).dereference()))
    finally:
        if selected is not None:
            selected.switch()
            if frame is not None and frame.is_valid():
                frame.select()
    return hubs


def _tasks(hub):
    """Every unfinished task of hub, oldest first (the registry is newest first)."""
    tasks = []
    t = hub["tasks"]
    seen = 0
    while int(t) != 0 and seen < 1_000_000:
        tasks.append(t)
        t = t["reg_next"]
        seen += 1
    tasks.reverse()
    return tasks


def _all_tasks():
    return [(thread, hub, [_Task(thread, hub, t) for t in _tasks(hub)]) for thread, hub in _hubs()]


def _thread_label(thread):
    return "thread %d (LWP %d)" % (thread.num, thread.ptid[1])


def _backtrace(task, limit):
    regs = task.saved_registers()
    if regs is None:
        if task.state() == "running":
            print("  running: its stack is the thread's own; see `thread %d` then `bt`" % task.thread.num)
        else:
            print("  %s: no stack yet" % task.state())
        return
    previous = gdb.selected_thread()
    previous_frame = gdb.selected_frame()
    task.thread.switch()
    gdb.newest_frame().select()
    saved = {r: int(gdb.parse_and_eval("$" + r)) for r in regs}
    try:
        for r, v in regs.items():
            gdb.execute("set $%s = %d" % (r, v), to_string=True)
        gdb.execute("bt %d" % limit if limit else "bt")
    except gdb.error as e:
        if "core" in str(e).lower() or "writ" in str(e).lower():
            raise gdb.GdbError("grove bt needs a live process: %s" % e)
        raise
    finally:
        try:
            for r, v in saved.items():
                gdb.execute("set $%s = %d" % (r, v), to_string=True)
        finally:
            previous.switch()
            if previous_frame.is_valid():
                previous_frame.select()


class GrovePrefix(gdb.Command):
    """grove's tasks: grove tasks, grove bt TASK, grove bt all."""

    def __init__(self):
        super().__init__("grove", gdb.COMMAND_STACK, gdb.COMPLETE_NONE, True)

    def invoke(self, arg, from_tty):
        gdb.execute("help grove")


class GroveTasks(gdb.Command):
    """List every unfinished grove task of every hub: name, id, state, what it waits on.
Usage: grove tasks"""

    def __init__(self):
        super().__init__("grove tasks", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        if arg.strip():
            raise gdb.GdbError("usage: grove tasks (it takes no argument)")
        with _cplusplus():
            self.list()

    def list(self):
        hubs = _all_tasks()
        if not hubs:
            print("grove: no thread of this program has a hub")
            return
        for thread, _hub, tasks in hubs:
            print("hub of %s: %d unfinished task(s)" % (_thread_label(thread), len(tasks)))
            for t in tasks:
                print('  task "%s" (id %d, 0x%x): %s' % (t.name, t.id, t.address, t.state()))


class GroveBt(gdb.Command):
    """Print the backtrace of a grove task parked on its own stack.
Usage: grove bt TASK [N]    TASK: a task's name, task-N, its id or its address
       grove bt all [N]     every task
N limits the frames shown (as bt N)."""

    def __init__(self):
        super().__init__("grove bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        words = gdb.string_to_argv(arg)
        if not words or len(words) > 2:
            raise gdb.GdbError("usage: grove bt TASK [N] or grove bt all [N]")
        limit = 0
        if len(words) == 2:
            try:
                limit = int(words[1])
            except ValueError:
                raise gdb.GdbError("grove bt: N must be a number of frames, not %r" % words[1])
        with _cplusplus():
            self.show(words[0], limit)

    def show(self, which, limit):
        chosen = []
        for _thread, _hub, tasks in _all_tasks():
            for t in tasks:
                if which == "all" or which in (t.name, "task-%d" % t.id, str(t.id)):
                    chosen.append(t)
                else:
                    try:
                        if int(which, 0) == t.address:
                            chosen.append(t)
                    except ValueError:
                        pass
        if not chosen:
            raise gdb.GdbError("grove bt: no unfinished task is %r (see grove tasks)" % which)
        for t in chosen:
            print('task "%s" (id %d) on %s: %s' % (t.name, t.id, _thread_label(t.thread), t.state()))
            _backtrace(t, limit)


GrovePrefix()
GroveTasks()
GroveBt()
