// join is a room's stream (shared between tabs): the room of name, where this
// page is counted, or with opts.only a stream that only watches (/watch). A
// watch set (watch.js) attached as r._ws adds its rooms to the stream.
function join(b, name, opts) {
  var only = !!(opts && opts.only);
  name = only ? '' : String(name == null ? 'lobby' : name);
  var r = rooms[b + ' ' + name];
  if (r) {
    if (opts && opts.token !== undefined) r.setToken(opts.token);
    return r;
  }
  var provider = tokenFn(opts && opts.token);
  var ls = listeners(), es = null, next = null, timer = 0, ch = null;
  var abort = null, release = null, fails = 0, warned = false;
  // Token refresh: gen drops a token that comes after a newer request; a
  // switch to a new stream comes at least RENEW_MS after the last stream
  // opened (lastOpen), and failed ones back off.
  var gen = 0, lastOpen = -Infinity, renewTimer = 0, renewFails = 0, watchTimer = 0;
  var asked = []; // the watched rooms of the newest stream
  var stream = b + (name === 'lobby' ? '/events' : '/rooms/' + encodeURIComponent(name) + '/events') +
    '?visitor=' + visitor;
  // url is the stream's address with tok and the watched rooms.
  function url(tok, names) {
    names = names.filter(function (n) { return n !== name; }); // the own room's counts come anyway
    var u = only ? b + '/watch?rooms=' + names.join(',') : stream + (names.length ? '&watch=' + names.join(',') : '');
    return tok ? u + '&token=' + encodeURIComponent(tok) : u;
  }
  function watched() { return r._ws ? r._ws.names() : []; }
  r = rooms[b + ' ' + name] = {
    name: name, count: null, presence: null, state: 'connecting', error: null, leader: false, closed: false,
    on: function (ev, fn) {
      if (EVENTS.indexOf(ev) < 0 || typeof fn !== 'function') throw new TypeError('presence: on(count|presence|state, fn)');
      ls[ev].push(fn);
      var v = r[ev];
      if (v !== null && !r.closed) call(fn, v);
      return r;
    },
    off: function (ev, fn) {
      var i = ls[ev] ? ls[ev].indexOf(fn) : -1;
      if (i >= 0) ls[ev].splice(i, 1);
      return r;
    },
    // setToken sets (or with null, drops) the token function, and moves to a stream with its token.
    setToken: function (fn) {
      fn = tokenFn(fn);
      var regroup = sharing && !!fn !== !!provider;
      provider = fn;
      if (r.closed || (!only && !ROOM.test(name))) return r;
      if (regroup) { stop(); share(); } // tabs with a token share apart from tabs without
      else if (!sharing || r.leader) { if (es) renew(); else open(); }
      return r;
    },
    close: function () {
      if (r.closed) return;
      r.closed = true;
      delete rooms[b + ' ' + name];
      stop();
      ls = listeners();
    },
    // For watch.js: post a message to the other tabs; reopen with a new set of rooms.
    _post: function (m) { if (ch) ch.postMessage(m); },
    _reopen: reopen
  };

  // stop ends this tab's streams, timers and tab sharing.
  function stop() {
    gen++;
    clearTimeout(timer);
    clearTimeout(renewTimer);
    clearTimeout(watchTimer);
    if (es) es.close();
    if (next) next.close();
    es = next = null;
    if (abort) abort.abort();
    if (release) release();
    if (ch) ch.close();
    abort = release = ch = null;
    r.leader = false;
  }

  // set records a new value, tells listeners, and (leader) relays it to other tabs.
  function set(k, v) {
    if (r.closed) return;
    if (k === 'presence' ? JSON.stringify(v) === JSON.stringify(r.presence) : r[k] === v) return;
    r[k] = v;
    if (r.leader && ch) ch.postMessage({ k: k, v: v, e: r.error });
    ls[k].slice().forEach(function (fn) { call(fn, v); });
    if (k === 'state' && r._ws) r._ws.state(v, r.error);
  }

  function warn(why) {
    if (warned) return;
    warned = true;
    console.warn('presence: ' + (only ? 'watching' : 'room "' + name + '"') + ' at ' + b + ': ' + why);
  }

  // token calls the token function (if any) and then done with its token;
  // failed gets why it gave none. A newer call supersedes an older one.
  function token(done, failed) {
    var g = ++gen;
    if (!provider) return done('');
    var t = setTimeout(function () { if (g === gen && !r.closed) { gen++; failed('the token function gave no token within 15 s'); } }, 15000);
    new Promise(function (ok) { ok(provider()); }).then(function (tok) {
      if (typeof tok !== 'string') throw new TypeError('it returned ' + (tok === null ? 'null' : typeof tok) + ', not a string');
      return tok;
    }).then(function (tok) {
      clearTimeout(t);
      if (g === gen && !r.closed) done(tok);
    }, function (e) {
      clearTimeout(t);
      if (g === gen && !r.closed) failed('the token function failed: ' + (e && e.message || e));
    });
  }

  // open starts streaming from scratch: at first, and after an error.
  function open() {
    if (r.closed) return;
    set('state', 'connecting');
    if (only && !watched().length) return; // nothing to watch yet: reopen() opens
    token(connect, function (why) { fails++; retry(0, why); });
  }

  // renew moves to a stream with a fresh token: the new stream opens
  // before the old one closes, so the count never leaves the page.
  function renew() {
    if (r.closed || next) return;
    clearTimeout(renewTimer);
    var wait = lastOpen + RENEW_MS - Date.now();
    if (wait > 0) { renewTimer = setTimeout(renew, wait); return; }
    lastOpen = Date.now();
    token(connect, function (why) {
      if (es) { warn(why); renewLater(); } else { fails++; retry(0, why); }
    });
  }

  // renewLater tries renew again after a failed one, backing off to 60 s.
  function renewLater() {
    renewFails++;
    clearTimeout(renewTimer);
    renewTimer = setTimeout(renew, Math.min(60, Math.pow(2, renewFails)) * 1000);
  }

  // reopen moves to a stream with the watch set's rooms, at most once per
  // WATCH_MS; like renew, the new stream opens before the old one closes.
  function reopen() {
    if (r.closed || (sharing && !r.leader)) return;
    clearTimeout(watchTimer);
    if (!watched().some(function (n) { return asked.indexOf(n) < 0; })) return; // it has them all
    var wait = Math.max(lastOpen + WATCH_MS - Date.now(), next ? WATCH_MS : 0);
    if (wait > 0) { watchTimer = setTimeout(reopen, wait); return; } // a switch under way goes first
    if (!es) { if (r.state !== 'error') open(); return; } // after an error, the retry brings the rooms
    lastOpen = Date.now();
    token(connect, function (why) { warn(why); renewLater(); });
  }

  // connect opens a stream with tok: the stream, or the next one if a stream is live.
  function connect(tok) {
    var names = asked = watched();
    if (only && !names.length) return;
    var s = new EventSource(url(tok, names)), expiring = false;
    lastOpen = Date.now();
    if (es && es.readyState === EventSource.OPEN) { if (next) next.close(); next = s; } else { if (es) es.close(); es = s; }
    s.onopen = function () {
      if (s === next) { // the switch: the new stream is live, the old one goes
        if (es) es.close();
        es = s;
        next = null;
        renewFails = 0;
      }
      if (s !== es) return;
      fails = 0; r.error = null; set('state', 'live');
      if (r._ws) r._ws.opened(names);
    };
    s.addEventListener('user count', function (e) {
      if (s !== es) return;
      var n = Number(e.data);
      if (Number.isSafeInteger(n) && n >= 0) { set('count', n); set('state', 'live'); }
    });
    s.addEventListener('presence', function (e) {
      if (s !== es) return;
      var p;
      try { p = JSON.parse(e.data); } catch (err) { return; }
      if (!p || typeof p.people !== 'number') return;
      if (only || (p.room && p.room !== name)) { if (r._ws) r._ws.got(p); return; }
      set('presence', { room: p.room, people: p.people, connections: p.connections });
      if (r._ws) r._ws.got({ room: name, people: p.people, connections: p.connections }); // a badge of the own room
      set('count', p.people);
    });
    // The server ends this stream with its token and says so shortly before.
    s.addEventListener('token-expiring', function () {
      if (s !== es) return;
      expiring = true;
      if (provider) renew();
    });
    s.onerror = function () {
      if (s === next) { // the new stream failed: the old one serves on while it lasts
        s.close();
        next = null;
        if (es) return renewLater();
      } else if (s !== es) {
        return;
      } else if (s.readyState !== EventSource.CLOSED && !(expiring && provider)) {
        set('state', 'reconnecting');
        return;
      } else {
        s.close();
        if (expiring && provider) { // ended with its token: EventSource would retry with it
          es = null;
          if (!next) { set('state', 'reconnecting'); renew(); } // else the new stream, on its way, takes over
          return;
        }
      }
      fails++;
      diagnose(url(tok, names), function (status, why) { retry(status, why); });
    };
  }

  // retry shows an error and opens again later: 5 s, as asked; a refusal the
  // server will repeat (4xx) or a long outage backs off to 60 s. A token
  // refused (401) with a token function is fetched again sooner, backing off.
  function retry(status, why) {
    var wait = provider && status === 401 ? Math.min(60, Math.pow(2, fails)) :
      status >= 400 && status < 500 && status !== 408 && status !== 429 ? 60 :
      Math.min(60, 5 * Math.pow(2, Math.max(0, fails - 3)));
    r.error = why;
    set('state', 'error');
    warn(why + '; retrying in ' + wait + ' s');
    clearTimeout(timer);
    if (!r.closed) timer = setTimeout(open, wait * 1000 + Math.random() * 1000);
  }

  // diagnose asks the stream URL why it was refused (EventSource does not say);
  // it aborts at once if the server answers 200 this time.
  function diagnose(u, done) {
    if (!window.fetch || !window.AbortController) return done(0, 'the stream was refused or cut');
    var ac = new AbortController(), t = setTimeout(function () { ac.abort(); }, 5000);
    fetch(u, { signal: ac.signal, cache: 'no-store' }).then(function (res) {
      clearTimeout(t);
      if (res.ok) { ac.abort(); return done(0, 'the stream closed'); }
      return res.json().then(function (j) { return j && j.error; }, function () { return ''; }).then(function (msg) {
        done(res.status, 'HTTP ' + res.status + (msg ? ': ' + msg : ''));
      });
    }, function () { done(0, 'the service cannot be reached (network error, or CORS not allowed for ' + location.origin + ')'); });
  }

  // share: one tab (holder of the lock) streams and relays; the others listen.
  // Tabs with a token function share apart from tabs without one.
  function share() {
    var key = 'presence:' + b + ':' + (only ? 'watch' : name) + (provider ? ':token' : '');
    var c = ch = new BroadcastChannel(key), a = abort = new AbortController();
    c.onmessage = function (e) {
      var m = e.data || {};
      if (m.hello) {
        if (r.leader) {
          c.postMessage({ k: 'state', v: r.state, e: r.error });
          if (r.count !== null) c.postMessage({ k: 'count', v: r.count });
          if (r.presence) c.postMessage({ k: 'presence', v: r.presence });
          if (r._ws) r._ws.replay();
        }
      } else if (m.w) {
        if (r._ws) r._ws.message(m);
      } else if (!r.leader && EVENTS.indexOf(m.k) >= 0) {
        if (m.k === 'state') r.error = m.e || null;
        set(m.k, m.v);
      }
    };
    c.postMessage({ hello: 1 });
    navigator.locks.request(key, { signal: a.signal }, function () {
      if (r.closed || a !== abort) return;
      r.leader = true;
      open();
      if (r._ws) r._ws.lead();
      return new Promise(function (done) { release = done; });
    }).catch(function () { /* aborted by close() or setToken() */ });
  }

  if (!only && !ROOM.test(name)) {
    r.error = 'invalid room name';
    set('state', 'error');
    warn('invalid room name (1 to 64 characters of A-Z a-z 0-9 . _ -)');
    return r;
  }
  if (sharing) share(); else open();
  return r;
}

