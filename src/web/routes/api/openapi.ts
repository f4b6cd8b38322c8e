import { z } from 'zod'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { AppError } from '../../../shared/errors.ts'

/**
 * API routes are declared with zod schemas once: the same schemas validate requests and build the
 * OpenAPI 3.1 document served at /api/v1/openapi.json (zod 4's toJSONSchema).
 */
export interface ApiRouteSpec<Q extends z.ZodType, B extends z.ZodType> {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
  path: string
  summary: string
  tag: string
  query?: Q
  body?: B
  response: z.ZodType
  handler: (ctx: { query: z.infer<Q>; body: z.infer<B>; params: Record<string, string>; req: FastifyRequest; reply: FastifyReply }) => Promise<unknown>
}

export class ApiRegistry {
  private readonly specs: ApiRouteSpec<any, any>[] = []
  constructor(private readonly prefix = '/api/v1') {}

  route<Q extends z.ZodType = z.ZodUndefined, B extends z.ZodType = z.ZodUndefined>(app: FastifyInstance, spec: ApiRouteSpec<Q, B>): void {
    this.specs.push(spec)
    const url = this.prefix + spec.path.replace(/\{(\w+)\}/g, ':$1')
    app.route({
      method: spec.method,
      url,
      preHandler: app.requireApi,
      handler: async (req, reply) => {
        const query = parse(spec.query, req.query, 'query')
        const body = parse(spec.body, req.body, 'body')
        return spec.handler({ query, body, params: req.params as Record<string, string>, req, reply })
      },
    })
  }

  document(info: { title: string; version: string }) {
    const paths: Record<string, any> = {}
    for (const s of this.specs) {
      const params: any[] = []
      for (const m of s.path.matchAll(/\{(\w+)\}/g)) params.push({ name: m[1], in: 'path', required: true, schema: { type: 'string' } })
      if (s.query) {
        const js = z.toJSONSchema(s.query, { io: 'input', unrepresentable: 'any' }) as any
        for (const [name, schema] of Object.entries<any>(js.properties ?? {})) {
          params.push({ name, in: 'query', required: (js.required ?? []).includes(name), schema })
        }
      }
      const op: any = {
        summary: s.summary,
        tags: [s.tag],
        parameters: params,
        security: [{ bearer: [] }],
        responses: {
          '200': { description: 'OK', content: { 'application/json': { schema: z.toJSONSchema(s.response, { unrepresentable: 'any' }) } } },
          '401': { description: 'Missing or invalid API token' },
        },
      }
      if (s.body) op.requestBody = { required: true, content: { 'application/json': { schema: z.toJSONSchema(s.body, { io: 'input', unrepresentable: 'any' }) } } }
      ;(paths[this.prefix + s.path] ??= {})[s.method.toLowerCase()] = op
    }
    return {
      openapi: '3.1.0',
      info,
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'API token from Admin > API Tokens' } } },
      paths,
    }
  }
}

function parse<T extends z.ZodType | undefined>(schema: T, value: unknown, where: string): any {
  if (!schema) return undefined
  const r = schema.safeParse(value ?? {})
  if (!r.success) {
    const i = r.error.issues[0]!
    throw new AppError('api_invalid_input', `${where}.${i.path.join('.') || '(root)'}: ${i.message}`)
  }
  return r.data
}
