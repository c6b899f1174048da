// The demo app, a tour of what README.md teaches: a visit counter, log in and log out with
// login()/logout(), a page behind requireLogin, flash messages, and a page that shows what the
// cookie holds. It uses the plugin exactly as an application would, through the package's name.
import Fastify from 'fastify'
import encryptedSession, { Fernet, MultiFernet } from 'fastify-encrypted-session'

/** Seconds a session is valid after its token was issued: the plugin's default, stated so the cookie page can show it. */
export const TTL = 86_400
/**
 * Longest token, over all its cookies: room for the cookie page's padding, so that a visitor can
 * watch a large session split across cookies (a bound of one cookie would refuse to save it).
 */
const MAX_SESSION_SIZE = 12_800
/** Largest padding the cookie page adds: about 11,100 characters of token, under MAX_SESSION_SIZE. */
const MAX_PADDING = 8 * 1024
const PADDING_STEP = 1024

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

function layout (title, flashes, body) {
  const messages = flashes.length === 0
    ? ''
    : `<ul id="flashes" role="status">${flashes.map(({ category, message }) =>
        `<li class="flash ${escapeHtml(category)}">${escapeHtml(message)}</li>`).join('')}</ul>`
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} - fastify-encrypted-session demo</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
nav a{margin-right:1rem}code,pre{background:#f3f3f3;padding:0 .3em}pre{padding:.5em;overflow:auto}
#flashes{list-style:none;padding:0}.flash{background:#e8f1ff;border-left:4px solid #2f6fdf;padding:.4em .8em}
dt{font-weight:bold}dd{margin:0 0 .5em 1rem}form{display:inline-block;margin:.2em .5em .2em 0}</style></head>
<body>
<nav aria-label="Demo pages"><a href="/">Home</a><a href="/account">Account</a><a href="/cookie">The cookie</a></nav>
<main>
<h1>${escapeHtml(title)}</h1>
${messages}
${body}
</main>
</body>
</html>`
}

const logoutForm = '<form method="post" action="/logout"><button>Log out</button></form>'

function homePage ({ visits, user, where }) {
  const who = user === undefined
    ? `<form method="post" action="/login">
<label>Name <input name="name" maxlength="64" required autofocus autocomplete="username"></label>
<button>Log in</button>
</form>
<p>Logging in calls <code>session.login({ name })</code>: a fresh token, and only the keys named in
<code>keepOnLogin</code> (here the visit counter) carry over.</p>`
    : `<p id="user">Logged in as <strong>${escapeHtml(user.name)}</strong></p>
${logoutForm}
<p>Logging out calls <code>session.logout()</code>, which empties the session: the counter starts again.</p>`
  return `<p>You have visited this page <strong id="visits">${visits}</strong> time${visits === 1 ? '' : 's'}.</p>
${who}
<p><a href="/account">Your account</a> is behind <code>app.requireLogin</code>; <a href="/cookie">the cookie page</a>
shows what your browser holds. ${where}</p>`
}

// What the pages say of where the session lives, in each mode.
const IN_COOKIE = 'Everything lives in one encrypted cookie: a Fernet token of plain JSON that a Flask app with the same key could read. There is no server-side store.'
const IN_REDIS = 'The session lives in Redis, encrypted; the cookie holds only a Fernet token of its random id, so logging out ends it on every server at once.'

function accountPage (user) {
  return `<p id="account">You are logged in as <strong>${escapeHtml(user.name)}</strong>.</p>
<p>This route has <code>preHandler: app.requireLogin</code>; without a user, its
<code>config.onLoginRequired</code> flashes a message and redirects to the home page instead of answering 401.</p>
<p><code>request.session.user</code> holds:</p>
<pre id="account-user">${escapeHtml(JSON.stringify(user, null, 2))}</pre>
${logoutForm}`
}

function cookiePage ({ cookie, data, now }) {
  const intro = '<p>This is the session cookie your browser sent with the request for this page (<code>request.cookies</code>), ' +
    'read before the page ran: what the page changes shows on the next load.</p>'
  let about
  if (cookie === undefined) {
    about = '<p id="cookie-none">Your browser sent no session cookie: nothing is stored yet (an empty session is never stored). ' +
      '<a href="/">Visit the home page</a> to start one.</p>'
  } else if (cookie.expires === undefined) {
    about = '<p id="cookie-refused">Your browser sent a session cookie this server could not open (edited, expired, or made under ' +
      'another key), so this request got a fresh, empty session and the cookie is cleared.</p>'
  } else {
    about = `<dl>
<dt>Size</dt><dd><span id="cookie-size">${cookie.size}</span> bytes of token (the JSON inside is ${cookie.jsonSize} bytes)</dd>
<dt>Cookies</dt><dd><span id="cookie-count">${cookie.names.length}</span>: <code>${cookie.names.map(escapeHtml).join('</code>, <code>')}</code>
(a token too large for one cookie is split across <code>session.0</code>, <code>session.1</code>, ...)</dd>
<dt>Issued</dt><dd><time datetime="${cookie.issued}">${cookie.issued}</time> (the token's own, authenticated timestamp)</dd>
<dt>Expires</dt><dd><time id="cookie-expires" datetime="${cookie.expires}">${cookie.expires}</time>,
in <span id="cookie-expires-in">${cookie.expiresIn}</span> seconds (issued + ttl of ${TTL} s; a visit after a quarter of that re-issues it)</dd>
</dl>
<h2>The session inside, <code>request.session.data()</code></h2>
<pre id="session-json">${escapeHtml(JSON.stringify(data, null, 2))}</pre>`
  }
  return `${intro}
${about}
<p>Make the session larger to see it split across cookies, or smaller again:</p>
<form method="post" action="/cookie/pad"><button>Add ${PADDING_STEP} bytes</button></form>
<form method="post" action="/cookie/unpad"><button>Remove the padding</button></form>
<p><small>Rendered at ${new Date(now * 1000).toISOString()}.</small></p>`
}

/** The session's cookies as the request brought them: one plain cookie, or chunks from session.0 on. */
function incomingCookies (cookies) {
  const own = (name) => Object.hasOwn(cookies, name) ? cookies[name] : undefined
  if (own('session') !== undefined) return [['session', own('session')]]
  const chunks = []
  while (own(`session.${chunks.length}`) !== undefined) chunks.push([`session.${chunks.length}`, own(`session.${chunks.length}`)])
  return chunks
}

/** A RedisStore on a node-redis client of its own, closed with the app. */
async function redisStore (app, url) {
  const { createClient } = await import('redis')
  const { RedisStore } = await import('fastify-encrypted-session/redis')
  const client = createClient({ url })
  client.on('error', (error) => { app.log.warn({ err: error }, 'Demo: Redis connection error') })
  await client.connect()
  app.addHook('onClose', async () => { client.destroy() })
  return new RedisStore({ client })
}

/**
 * @param {{ key?: string, redisUrl?: string, logger?: boolean | object, warn?: (message: string) => void }} options
 */
export async function buildDemo ({ key = process.env.SESSION_KEY, redisUrl = process.env.REDIS_URL, logger = false, warn = console.warn } = {}) {
  if (key === undefined || key === '') {
    key = Fernet.generateKey()
    warn('SESSION_KEY is not set: using a key generated for this run, so sessions will not survive a restart. ' +
      'Make a lasting one with `npx fastify-encrypted-session keygen`.')
  }
  const app = Fastify({ logger })
  // 'auto': Secure over HTTPS, and a plain-HTTP demo still works in every browser.
  // Cookie-only by default, nothing to run; REDIS_URL keeps the sessions in Redis instead.
  const store = redisUrl === undefined || redisUrl === '' ? undefined : await redisStore(app, redisUrl)
  const where = store === undefined ? IN_COOKIE : IN_REDIS
  await app.register(encryptedSession, { key, ttl: TTL, maxSessionSize: MAX_SESSION_SIZE, keepOnLogin: ['visits'], cookie: { secure: 'auto' }, ...(store === undefined ? {} : { store }) })
  // Every key decrypts, as in the plugin, so the cookie page can read a cookie made under an older one.
  const fernet = new MultiFernet(key.split(',').map((part) => part.trim()))
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 1024 },
    (request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body))))

  const html = (request, reply, title, body) => reply
    .header('cache-control', 'no-store')
    .type('text/html; charset=utf-8')
    .send(layout(title, request.session.flashes(), body))

  app.get('/', async (request, reply) => {
    const visits = (request.session.get('visits') ?? 0) + 1
    request.session.set('visits', visits)
    return html(request, reply, 'fastify-encrypted-session', homePage({ visits, user: request.session.user, where }))
  })

  app.get('/account', {
    preHandler: app.requireLogin,
    config: {
      onLoginRequired (request, reply) {
        request.session.flash('info', 'Log in to see your account.')
        return reply.redirect('/', 303)
      }
    }
  }, async (request, reply) => html(request, reply, 'Your account', accountPage(request.session.user)))

  app.get('/cookie', async (request, reply) => {
    // Read before html() takes the flashes, so the JSON is what the cookie holds.
    const data = request.session.data()
    const now = Math.floor(Date.now() / 1000)
    const pieces = incomingCookies(request.cookies)
    let cookie
    if (pieces.length > 0) {
      cookie = { names: pieces.map(([name]) => name) }
      if (!request.session.isNew) {
        const token = pieces.map(([, value]) => value).join('')
        const issued = await fernet.extractTimestamp(token)
        Object.assign(cookie, {
          size: Buffer.byteLength(token),
          jsonSize: Buffer.byteLength(JSON.stringify(data)),
          issued: new Date(issued * 1000).toISOString(),
          expires: new Date((issued + TTL) * 1000).toISOString(),
          expiresIn: issued + TTL - now
        })
      }
    }
    return html(request, reply, 'What the cookie holds', cookiePage({ cookie, data, now }))
  })

  app.get('/api/session', async (request) => ({ visits: request.session.get('visits') ?? 0, user: request.session.user ?? null }))

  app.post('/login', async (request, reply) => {
    const name = typeof request.body?.name === 'string' ? request.body.name.trim().slice(0, 64) : ''
    if (name === '') return reply.code(400).type('text/plain').send('A name is required')
    request.session.login({ name })
    request.session.flash('info', `Welcome, ${name}: you are logged in.`)
    return reply.redirect('/', 303)
  })

  app.post('/logout', async (request, reply) => {
    request.session.logout()
    request.session.flash('info', 'You are logged out, and the session was emptied.')
    return reply.redirect('/', 303)
  })

  app.post('/cookie/pad', async (request, reply) => {
    const padding = request.session.get('padding') ?? ''
    if (padding.length < MAX_PADDING) request.session.set('padding', padding + '.'.repeat(PADDING_STEP))
    else request.session.flash('info', `The padding stops at ${MAX_PADDING} bytes, within the demo's maxSessionSize of ${MAX_SESSION_SIZE}.`)
    return reply.redirect('/cookie', 303)
  })

  app.post('/cookie/unpad', async (request, reply) => {
    request.session.delete('padding')
    return reply.redirect('/cookie', 303)
  })

  return app
}
