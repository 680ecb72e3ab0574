// pageWatch is the page's watch set, made on first use. It rides on the
// stream of the tag's room when the page is counted there (its badge shows,
// or the API used it), and otherwise on a stream that only watches.
function pageWatch() {
  if (!watching) {
    var r = mine(true) || join(base, null, { only: true });
    watching = watchSet(r);
  }
  return watching;
}

// watchSet follows rooms over carrier r's stream, shared between tabs: this
// tab's wants (refs), and in the leading tab the other tabs' wants too; the
// stream carries the first MAX_WATCH of them all. views are this tab's rooms,
// last the latest counts of the stream's rooms (for the leader to relay).
function watchSet(r) {
  var id = Math.random().toString(36).slice(2) + Date.now().toString(36);
  var refs = new Map(), remote = new Map(), views = new Map(), last = new Map();
  var streaming = [], pending = 0, warned = false, ws;

  function local() { return Array.from(refs.keys()).slice(0, MAX_WATCH); }
  function names() {
    var all = new Set(local());
    if (!sharing || r.leader) remote.forEach(function (ns) { ns.forEach(function (n) { all.add(n); }); });
    var list = Array.from(all);
    if (list.length > MAX_WATCH && !warned) {
      warned = true;
      console.warn('presence: ' + list.length + ' rooms to watch; a stream follows at most ' + MAX_WATCH +
        ', the others wait for a free place');
    }
    return list.slice(0, MAX_WATCH);
  }

  // vset sets a view's value and tells its listeners.
  function vset(v, k, x) {
    if (k === 'presence' ? JSON.stringify(x) === JSON.stringify(v.presence) : v[k] === x) return;
    v[k] = x;
    v._ls[k].slice().forEach(function (fn) { call(fn, x, v.name); });
  }
  function apply(p) {
    var v = views.get(p.room);
    if (!v) return;
    vset(v, 'presence', { room: p.room, people: p.people, connections: p.connections });
    vset(v, 'count', p.people);
  }
  // states shows the carrier's state on every view; rooms past the limit wait.
  function states() {
    var on = new Set(names());
    views.forEach(function (v) {
      if (v.error === 'invalid room name') return;
      var over = (!sharing || r.leader) && !on.has(v.name);
      v.error = over ? 'over the limit of ' + MAX_WATCH + ' rooms per stream; waiting for a free place' : r.error;
      vset(v, 'state', over ? 'error' : r.state);
    });
  }
  // changed runs once after a burst of changes: the leader reopens the
  // stream if it lacks a room (at most once per WATCH_MS), another tab tells
  // the leader what it wants.
  function changed() {
    if (pending) return;
    pending = setTimeout(function () {
      pending = 0;
      if (r.closed) return;
      states();
      if (sharing && !r.leader) return r._post({ w: 'want', id: id, names: local() });
      r._reopen(); // if the stream lacks a room
    });
  }
  function valid(ns) {
    return Array.isArray(ns) ? ns.filter(function (n) { return typeof n === 'string' && ROOM.test(n); }).slice(0, MAX_WATCH) : [];
  }

  ws = {
    names: names,
    // add follows name for one more user and returns its view.
    add: function (name) {
      name = String(name);
      var v = views.get(name);
      if (!v) {
        var ls = listeners();
        v = { name: name, count: null, presence: null, state: r.state, error: null, _ls: ls,
          on: function (ev, fn) {
            if (EVENTS.indexOf(ev) < 0 || typeof fn !== 'function') throw new TypeError('presence: on(count|presence|state, fn)');
            ls[ev].push(fn);
            if (v[ev] !== null) call(fn, v[ev], name);
            return v;
          },
          off: function (ev, fn) {
            var i = ls[ev] ? ls[ev].indexOf(fn) : -1;
            if (i >= 0) ls[ev].splice(i, 1);
            return v;
          } };
        if (!ROOM.test(name)) {
          v.state = 'error';
          v.error = 'invalid room name';
          console.warn('presence: cannot watch "' + name.slice(0, 80) + '": invalid room name (1 to 64 characters of A-Z a-z 0-9 . _ -)');
          return v;
        }
        views.set(name, v);
        if (last.has(name)) apply(last.get(name));
      }
      if (ROOM.test(name)) { refs.set(name, (refs.get(name) || 0) + 1); changed(); }
      return v;
    },
    // release drops one user of name; the last one drops its view.
    release: function (name) {
      var n = (refs.get(name) || 0) - 1;
      if (n > 0) return refs.set(name, n);
      if (!refs.delete(name)) return;
      views.delete(name);
      changed();
    },
    // The carrier's calls: a stream opened with names; a watched room's counts; its state.
    opened: function (ns) {
      streaming = ns;
      var on = new Set(ns);
      last.forEach(function (_, n) { if (!on.has(n)) last.delete(n); });
      changed();
    },
    got: function (p) {
      if (typeof p.room !== 'string' || !ROOM.test(p.room)) return;
      if (streaming.indexOf(p.room) < 0 && last.size >= MAX_WATCH) return; // bounded
      last.set(p.room, p);
      if (r.leader) r._post({ w: 'vals', ps: [p] });
      apply(p);
    },
    state: function () { states(); },
    // Tab sharing: a new leader asks the others what they want; a new tab
    // gets the latest counts; messages from the other tabs.
    lead: function () { remote.clear(); r._post({ w: 'ask' }); changed(); },
    replay: function () { if (last.size) r._post({ w: 'vals', ps: Array.from(last.values()) }); },
    message: function (m) {
      if (m.w === 'ask' && !r.leader) return changed();
      if (m.w === 'vals' && !r.leader && Array.isArray(m.ps)) return m.ps.forEach(function (p) { if (p && p.room) apply(p); });
      if (!r.leader || typeof m.id !== 'string') return;
      remote.delete(m.id); // re-inserted last: the newest tab's wants go last
      if (m.w === 'want') {
        remote.set(m.id, valid(m.names));
        if (remote.size > 64) remote.delete(remote.keys().next().value); // bounded: the oldest tab's go
        ws.replay();
      }
      changed();
    }
  };
  r._ws = ws;
  addEventListener('pagehide', function () { if (sharing && !r.leader) r._post({ w: 'bye', id: id }); });
  return ws;
}
