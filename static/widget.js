/* presence widget: a live "N people viewing" badge and a small JS API.
 * <script src="https://presence.example.com/widget.js" data-room="docs-intro" async></script>
 * Attributes: data-room, data-label, data-label-one, data-theme (light|dark),
 * data-color, data-position (inline|bottom-right|bottom-left), data-target,
 * data-badge="false" (API only), data-share="false" (one stream per tab).
 * API: presence.on/off(event, fn) for the tag's room; presence.room(name[, {token: fn}])
 * -> {name, count, presence, state, leader, on, off, setToken, close}. Events: 'count',
 * 'presence', 'state' ('connecting'|'live'|'reconnecting'|'error').
 * Signed-in users and private rooms: pass a token function, which returns a fresh
 * token (a string, or a Promise of one; '' for none):
 *   presence.room('staff', { token: () => fetch('/presence-token').then(r => r.text()) });
 *   presence.setToken(fn) // the tag's room; room.setToken(fn) any room; null drops it
 * It is called before each new stream. The server ends a signed-in stream when its
 * token expires (exp plus the allowed clock skew) and sends 'token-expiring' shortly
 * before; the widget then gets a fresh token and opens a new stream before closing the
 * old one, so the count stays live and does not flicker. A switch comes at least 3 s
 * after the last stream opened; a token function that fails, or tokens the server
 * refuses (401), are retried with backoff up to 60 s. Tabs with a token function share a stream only with each
 * other; the leading tab's function supplies the tokens. */
(function () {
  'use strict';
  var script = document.currentScript ||
    [].slice.call(document.querySelectorAll('script[src*="widget.js"]')).pop();
  if (!script) return;
  var src = new URL(script.src, location.href);
  var base = src.origin + src.pathname.replace(/\/[^/]*$/, '');
  var data = script.dataset;
  var ROOM = /^[A-Za-z0-9._-]{1,64}$/;
  var EVENTS = ['count', 'presence', 'state'];
  var RENEW_MS = 3000; // at most one switch to a fresh token's stream per 3 s
  function listeners() { var m = {}; EVENTS.forEach(function (e) { m[e] = []; }); return m; }
  if (window.presence && window.presence._tag) { window.presence._tag(script, base); return; }

  var sharing = !!(navigator.locks && window.BroadcastChannel) && data.share !== 'false' &&
    new URLSearchParams(location.search).get('presence-share') !== '0';
  var visitor = visitorId();
  var rooms = {}; // base + ' ' + name -> room

  function visitorId() {
    var id = '', b = new Uint8Array(16), key = 'presence:visitor';
    crypto.getRandomValues(b);
    var fresh = [].map.call(b, function (x) { return (x < 16 ? '0' : '') + x.toString(16); }).join('');
    try {
      id = localStorage.getItem(key) || '';
      if (!/^[0-9a-f]{32}$/.test(id)) { localStorage.setItem(key, fresh); id = localStorage.getItem(key); }
    } catch (e) { /* storage blocked: a per-page id */ }
    return /^[0-9a-f]{32}$/.test(id || '') ? id : fresh;
  }

  function call(fn, v) {
    try { fn(v); } catch (e) { setTimeout(function () { throw e; }); }
  }

  // tokenFn checks a token function given to the API: a function, or null for none.
  function tokenFn(fn) {
    if (fn == null) return null;
    if (typeof fn !== 'function') throw new TypeError('presence: token must be a function that returns a token (or a Promise of one)');
    return fn;
  }

  function join(b, name, opts) {
    name = String(name == null ? 'lobby' : name);
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
    var gen = 0, lastOpen = -Infinity, renewTimer = 0, renewFails = 0;
    var stream = b + (name === 'lobby' ? '/events' : '/rooms/' + encodeURIComponent(name) + '/events') +
      '?visitor=' + visitor;
    function url(tok) { return tok ? stream + '&token=' + encodeURIComponent(tok) : stream; }
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
        if (r.closed || !ROOM.test(name)) return r;
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
      }
    };

    // stop ends this tab's streams, timers and tab sharing.
    function stop() {
      gen++;
      clearTimeout(timer);
      clearTimeout(renewTimer);
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
    }

    function warn(why) {
      if (warned) return;
      warned = true;
      console.warn('presence: room "' + name + '" at ' + b + ': ' + why);
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

    // connect opens a stream with tok: the stream, or the next one if a stream is live.
    function connect(tok) {
      var s = new EventSource(url(tok)), expiring = false;
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
        set('presence', { room: p.room, people: p.people, connections: p.connections });
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
        diagnose(url(tok), function (status, why) { retry(status, why); });
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
      var key = 'presence:' + b + ':' + name + (provider ? ':token' : '');
      var c = ch = new BroadcastChannel(key), a = abort = new AbortController();
      c.onmessage = function (e) {
        var m = e.data || {};
        if (m.hello) {
          if (r.leader) {
            c.postMessage({ k: 'state', v: r.state, e: r.error });
            if (r.count !== null) c.postMessage({ k: 'count', v: r.count });
            if (r.presence) c.postMessage({ k: 'presence', v: r.presence });
          }
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
        return new Promise(function (done) { release = done; });
      }).catch(function () { /* aborted by close() or setToken() */ });
    }

    if (!ROOM.test(name)) {
      r.error = 'invalid room name';
      set('state', 'error');
      warn('invalid room name (1 to 64 characters of A-Z a-z 0-9 . _ -)');
      return r;
    }
    if (sharing) share(); else open();
    return r;
  }

  // badge renders a room's count in a shadow root placed after the tag (or in data-target).
  function badge(tag, r) {
    var d = tag.dataset, pos = d.position || 'inline';
    var plural = d.label || '{n} people viewing', one = d.labelOne || '{n} person viewing';
    var host = document.createElement('presence-badge');
    var root = host.attachShadow({ mode: 'open' });
    var dark = d.theme === 'dark';
    var css = '' +
      ':host{all:initial;display:inline-block;vertical-align:middle;max-width:100%}' +
      ':host([hidden]){display:none}' +
      ':host([data-position=bottom-right]),:host([data-position=bottom-left]){position:fixed;bottom:16px;z-index:2147483000}' +
      ':host([data-position=bottom-right]){right:16px}:host([data-position=bottom-left]){left:16px}' +
      '.b{display:inline-flex;align-items:center;gap:.5em;box-sizing:border-box;max-width:100%;padding:.3em .8em;' +
      'border:1px solid var(--a,' + (dark ? '#57606a' : '#d0d7de') + ');border-radius:999px;' +
      'background:' + (dark ? '#1f2328;color:#f0f3f6' : '#fff;color:#1f2328') + ';' +
      'font:500 13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;' +
      'font-variant-numeric:tabular-nums;white-space:nowrap;' +
      'box-shadow:0 1px 2px rgba(0,0,0,.12)}' +
      '.t{min-width:0;overflow:hidden;text-overflow:ellipsis}' +
      '.d{flex:none;width:.6em;height:.6em;border-radius:50%;background:' + (dark ? '#8c959f' : '#6e7781') + '}' +
      '.live .d{position:relative;background:var(--a,#1a7f37)}' +
      '.live .d::after{content:"";position:absolute;inset:0;border-radius:50%;background:inherit;animation:p 2s ease-out infinite}' +
      '.error{opacity:.75}' +
      '@keyframes p{from{transform:scale(1);opacity:.6}to{transform:scale(2.6);opacity:0}}' +
      '@media (prefers-reduced-motion:reduce){.live .d::after{animation:none;opacity:0}}';
    root.innerHTML = '<span class="b" role="status"><span class="d" aria-hidden="true"></span><span class="t" aria-live="polite"></span></span>';
    try { // a constructed sheet keeps the root's textContent to the badge's words
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      root.adoptedStyleSheets = [sheet];
    } catch (e) {
      var st = document.createElement('style');
      st.textContent = css;
      root.insertBefore(st, root.firstChild);
    }
    var b = root.querySelector('.b'), t = root.querySelector('.t');
    if (d.color && window.CSS && CSS.supports('color', d.color)) b.style.setProperty('--a', d.color);
    if (pos === 'bottom-right' || pos === 'bottom-left') host.setAttribute('data-position', pos);
    function render() {
      var n = r.count, s = r.state;
      b.className = 'b ' + s;
      b.title = s === 'live' ? '' : 'Live count: ' + s;
      t.textContent = s === 'error' ? '–' : n === null ? plural.replace(/\{n\}/g, '…') :
        (n === 1 ? one : plural).replace(/\{n\}/g, n.toLocaleString());
    }
    r.on('state', render).on('count', render);
    render();
    function mount() {
      var target = d.target && document.querySelector(d.target);
      if (d.target && !target) console.warn('presence: data-target "' + d.target + '" matches nothing; the badge goes after the script tag');
      if (target) target.appendChild(host);
      else if (pos !== 'inline' || !tag.parentNode || tag.closest('head')) document.body.appendChild(host);
      else tag.parentNode.insertBefore(host, tag.nextSibling);
    }
    if (document.readyState === 'loading' && (d.target || !document.body || tag.closest('head'))) {
      document.addEventListener('DOMContentLoaded', mount);
    } else mount();
  }

  // tag handles one <script> tag: a badge tag joins its room now; an API-only tag on first use.
  function tag(el, b) {
    var r = null, room = el.dataset.room || 'lobby';
    if (el.dataset.badge !== 'false') badge(el, r = join(b, room));
    return function () { return r && !r.closed ? r : (r = join(b, room)); };
  }

  var mine = tag(script, base);
  window.presence = {
    sharing: sharing,
    base: base,
    visitor: visitor,
    room: function (name, opts) {
      if (name != null) return join(base, name, opts);
      var r = mine();
      return opts && opts.token !== undefined ? r.setToken(opts.token) : r;
    },
    setToken: function (fn) { return mine().setToken(fn); },
    on: function (ev, fn) { return mine().on(ev, fn); },
    off: function (ev, fn) { return mine().off(ev, fn); },
    _tag: tag
  };
})();
