/**
 * …/hooks (GET paged, POST) and …/hooks/{uuid} (GET, PUT, DELETE; `%7B…%7D`, braces optional).
 * The secret is stored but never returned (`secret_set` tells whether one is set).
 */
import { randomUUID } from 'node:crypto';
import { type RepoRequest, isApiResult, listResult, methodNotAllowed, parseJsonBody } from './api-common';
import { isoNanosZ } from './ids';
import { apiError, json, notFound, type ApiResult } from './http-util';
import type { FakeHook } from './model';

function validEvents(v: unknown): v is string[] {
  return Array.isArray(v) && v.length > 0 && v.every((e) => typeof e === 'string' && /^[a-z_]+:[a-z_]+$/.test(e));
}

function applyBody(h: FakeHook, body: Record<string, unknown>): ApiResult | undefined {
  if ('url' in body) {
    if (typeof body.url !== 'string' || !/^https?:\/\//.test(body.url)) return apiError(400, 'url: Enter a valid URL.', { fields: { url: ['Enter a valid URL.'] } });
    h.url = body.url;
  }
  if ('events' in body) {
    if (!validEvents(body.events)) return apiError(400, 'events: Invalid events.', { fields: { events: ['Invalid events'] } });
    h.events = [...new Set(body.events)];
  }
  if (typeof body.description === 'string') h.description = body.description;
  if (typeof body.active === 'boolean') h.active = body.active;
  if (typeof body.skip_cert_verification === 'boolean') h.skipCertVerification = body.skip_cert_verification;
  if ('secret' in body) h.secret = typeof body.secret === 'string' && body.secret !== '' ? body.secret : null;
  return undefined;
}

function normaliseUuid(s: string): string {
  const t = s.trim().toLowerCase();
  return t.startsWith('{') ? t : `{${t}}`;
}

export function handleHooks(req: RepoRequest): ApiResult {
  const [, idSeg, ...more] = req.rest;
  const { state, repo } = req;
  const { model, render } = state;
  if (idSeg === undefined || idSeg === '') {
    if (req.method === 'GET' || req.method === 'HEAD') {
      return listResult(req, model.hooksOf(repo).map((h) => render.hook(h, repo)), { defaultPagelen: 10, maxPagelen: 100 });
    }
    if (req.method !== 'POST') return methodNotAllowed();
    const body = parseJsonBody(req);
    if (isApiResult(body)) return body;
    if (typeof body.url !== 'string') return apiError(400, 'url: This field is required.', { fields: { url: ['This field is required.'] } });
    if (!('events' in body)) return apiError(400, 'events: This field is required.', { fields: { events: ['This field is required.'] } });
    const h: FakeHook = {
      uuid: `{${randomUUID()}}`,
      repository: repo.uuid,
      description: '',
      url: '',
      active: true,
      skipCertVerification: false,
      events: [],
      secret: null,
      createdAt: isoNanosZ(Date.now(), `hook:${Date.now()}:${Math.random()}`),
      body: Buffer.from(req.body),
    };
    const err = applyBody(h, body);
    if (err) return err;
    model.hooks.push(h);
    return json(201, render.hook(h, repo));
  }
  if (more.length > 0 && !(more.length === 1 && more[0] === '')) return notFound('Resource not found');
  const uuid = normaliseUuid(idSeg);
  const h = model.hooksOf(repo).find((x) => x.uuid.toLowerCase() === uuid);
  if (!h) return notFound(`Webhook ${idSeg} not found`);
  if (req.method === 'GET' || req.method === 'HEAD') return json(200, render.hook(h, repo));
  if (req.method === 'PUT') {
    const body = parseJsonBody(req);
    if (isApiResult(body)) return body;
    const copy: FakeHook = { ...h, events: [...h.events] };
    const err = applyBody(copy, body);
    if (err) return err;
    Object.assign(h, copy, { body: Buffer.from(req.body) });
    return json(200, render.hook(h, repo));
  }
  if (req.method === 'DELETE') {
    model.hooks.splice(model.hooks.indexOf(h), 1);
    return { status: 204 };
  }
  return methodNotAllowed();
}
