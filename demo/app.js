// The demo app: a visit counter, log in as a name, log out. It uses the plugin exactly as an
// application would, through the package's own name.
import Fastify from 'fastify'
import encryptedSession, { Fernet } from 'fastify-encrypted-session'

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

function page ({ visits, user }) {
  const who = user === undefined
    ? `<form method="post" action="/login">
        <label>Name <input name="name" maxlength="64" required autofocus></label>
        <button>Log in</button>
      </form>`
    : `<p id="user">Logged in as <strong>${escapeHtml(user.name)}</strong></p>
      <form method="post" action="/logout"><button>Log out</button></form>`
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>fastify-encrypted-session demo</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}
code{background:#f3f3f3;padding:0 .3em}</style></head>
<body>
<h1>fastify-encrypted-session</h1>
<p>You have visited this page <strong id="visits">${visits}</strong> time${visits === 1 ? '' : 's'}.</p>
${who}
<p>Everything above lives in one encrypted cookie named <code>session</code>: a Fernet token of
plain JSON that a Flask app with the same key could read. There is no server-side store.</p>
</body>
</html>`
}

/**
 * @param {{ key?: string, logger?: boolean | object, warn?: (message: string) => void }} options
 */
export async function buildDemo ({ key = process.env.SESSION_KEY, logger = false, warn = console.warn } = {}) {
  if (key === undefined || key === '') {
    key = Fernet.generateKey()
    warn('SESSION_KEY is not set: using a key generated for this run, so sessions will not survive a restart. ' +
      'Make a lasting one with `npx fastify-encrypted-session keygen`.')
  }
  const app = Fastify({ logger })
  // 'auto': Secure over HTTPS, and a plain-HTTP demo still works in every browser.
  await app.register(encryptedSession, { key, cookie: { secure: 'auto' } })
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 1024 },
    (request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body))))

  app.get('/', async (request, reply) => {
    const visits = (request.session.get('visits') ?? 0) + 1
    request.session.set('visits', visits)
    return reply.type('text/html; charset=utf-8').send(page({ visits, user: request.session.get('user') }))
  })

  app.get('/api/session', async (request) => ({ visits: request.session.get('visits') ?? 0, user: request.session.get('user') ?? null }))

  app.post('/login', async (request, reply) => {
    const name = typeof request.body?.name === 'string' ? request.body.name.trim().slice(0, 64) : ''
    if (name === '') return reply.code(400).type('text/plain').send('A name is required')
    request.session.set('user', { name })
    return reply.redirect('/', 303)
  })

  app.post('/logout', async (request, reply) => {
    request.session.delete('user')
    return reply.redirect('/', 303)
  })

  return app
}
