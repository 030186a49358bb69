package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// CalloutKeyFile holds, in the embedded server's data directory, the seed
// of the account key that signs what DeskCallout answers (mode 0600). On a
// cluster, its public key is the `issuer` of the servers' auth_callout
// block (deploy/nats/accounts.conf) and hoso serve reads the seed from
// --nats-callout-key.
const CalloutKeyFile = "nats-callout.nk"

// calloutQueue is the queue group of every process's DeskCallout: the
// server's question goes to one of them.
const calloutQueue = "hoso-callout"

// DeskSubject is where the desk named name sends its events: only that
// desk's NATS user may publish there, so the subject names the sender, as
// the server enforces it.
func DeskSubject(name string) string { return IngestSubject + "." + name }

// DeskCallout makes every desk principal a NATS user. It answers the NATS
// server's authorization callout (server.AuthCalloutSubject): a connection
// that is not one of the server's own users gives a desk's bearer token as
// its password (its user then being the desk's name) or as its token; the
// answer is a user that may publish only to DeskSubject(name) and discover
// the ingest service, or a refusal. The desk's identity is thus what the
// server enforces, never what a message says.
//
// A revoked desk's connection is not cut, but the ingest service asks
// Tokens for the principal of every request's subject, so its next request
// is refused; a name is never given twice, so no later desk inherits the
// subject.
type DeskCallout struct {
	// Conn answers: a connection of one of the callout's auth_users, in
	// the callout's account.
	Conn   *nats.Conn
	Tokens *Tokens
	// Issuer is the account key whose public key the servers name as the
	// callout's issuer.
	Issuer nkeys.KeyPair
	// Account is the account a desk's user is placed in: the server's
	// global account for the embedded server, HOSO on a cluster.
	Account string
	Logger  *slog.Logger

	sub    *nats.Subscription
	ctx    context.Context
	cancel context.CancelFunc
	// mu and closing keep the WaitGroup from growing once Close waits: a
	// question delivered before the unsubscription may still come.
	mu      sync.Mutex
	closing bool
	wg      sync.WaitGroup
}

// Open starts answering on Conn.
func (c *DeskCallout) Open() error {
	nc := c.Conn
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	sub, err := nc.QueueSubscribe(server.AuthCalloutSubject, calloutQueue, c.handle)
	if err != nil {
		return fmt.Errorf("NATS authorization callout: %w", err)
	}
	c.sub = sub
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("NATS authorization callout: %w", err)
	}
	return nil
}

// Close stops answering and waits for the answer being made.
func (c *DeskCallout) Close() error {
	var err error
	if c.sub != nil {
		if err = c.sub.Unsubscribe(); errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrBadSubscription) {
			err = nil
		}
	}
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.wg.Wait()
	if c.cancel != nil {
		c.cancel()
	}
	return err
}

// handle runs on the subscription's own goroutine, one question at a time:
// an answer is a lookup in memory and two signatures.
func (c *DeskCallout) handle(m *nats.Msg) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	defer c.wg.Done()
	req, err := jwt.DecodeAuthorizationRequestClaims(string(m.Data))
	if err != nil {
		c.Logger.Warn("NATS authorization callout: a question that is not one", "err", err)
		return
	}
	userJWT, refusal := c.authorize(req)
	answer := jwt.NewAuthorizationResponseClaims(req.UserNkey)
	answer.Audience = req.Server.ID
	answer.Jwt, answer.Error = userJWT, refusal
	signed, err := answer.Encode(c.Issuer)
	if err != nil {
		c.Logger.Error("NATS authorization callout: answer not signed", "err", err)
		return
	}
	_ = m.Respond([]byte(signed))
}

// authorize returns the signed user of the desk whose token the
// connection gives, or why it is refused.
func (c *DeskCallout) authorize(req *jwt.AuthorizationRequestClaims) (userJWT, refusal string) {
	o := req.ConnectOptions
	token := o.Token
	if token == "" {
		token = o.Password
	}
	if token == "" {
		return "", "hoso: a desk connects with its bearer token, as its password (user: its name) or as its token"
	}
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	p, err := c.Tokens.Authenticate(ctx, strings.TrimSpace(token))
	if err != nil {
		return "", "hoso: " + hoso.ErrorMessage(err)
	}
	if p.Role != hoso.RoleDesk {
		return "", fmt.Sprintf("hoso: NATS is the desks' door; %s reads over HTTP", p)
	}
	if o.Username != "" && o.Username != p.Name {
		return "", fmt.Sprintf("hoso: the token is %s's, not %q's", p.Name, o.Username)
	}
	user := jwt.NewUserClaims(req.UserNkey)
	user.Name = p.Name
	user.Audience = c.Account
	user.Permissions = deskUserPermissions(p.Name)
	signed, err := user.Encode(c.Issuer)
	if err != nil {
		c.Logger.Error("NATS authorization callout: user not signed", "desk", p.Name, "err", err)
		return "", "hoso: internal error"
	}
	return signed, ""
}

// deskUserPermissions are a desk principal's on NATS: publish to its own
// subject, discover the service, learn its own name
// ($SYS.REQ.USER.INFO), and receive answers on its inbox.
func deskUserPermissions(name string) jwt.Permissions {
	var p jwt.Permissions
	p.Pub.Allow.Add(DeskSubject(name), "$SYS.REQ.USER.INFO")
	p.Pub.Allow.Add(serviceDiscovery()...)
	p.Sub.Allow.Add("_INBOX.>")
	return p
}

// serviceDiscovery are the subjects of `nats micro ls/info/stats hoso`.
func serviceDiscovery() []string {
	var s []string
	for _, verb := range []string{"PING", "INFO", "STATS"} {
		s = append(s, "$SRV."+verb, "$SRV."+verb+"."+ServiceName, "$SRV."+verb+"."+ServiceName+".*")
	}
	return s
}

// LearnDeskSubject asks the server which desk nc is connected as, and
// returns that desk's subject: the one hoso.ingest.<name> its permissions
// let it publish to. A desk connected with its token alone thus needs no
// other setting.
func LearnDeskSubject(nc *nats.Conn, timeout time.Duration) (string, error) {
	reply, err := nc.Request("$SYS.REQ.USER.INFO", nil, timeout)
	if err != nil {
		return "", fmt.Errorf("ask the NATS server who this connection is: %w", err)
	}
	return deskSubjectOf(reply.Data)
}

// deskSubjectOf reads the desk's subject from the server's answer to
// $SYS.REQ.USER.INFO.
func deskSubjectOf(userInfo []byte) (string, error) {
	var info struct {
		Data struct {
			Permissions *server.Permissions `json:"permissions"`
		} `json:"data"`
	}
	if err := json.Unmarshal(userInfo, &info); err != nil {
		return "", fmt.Errorf("the NATS server's user info: %w", err)
	}
	if p := info.Data.Permissions; p != nil && p.Publish != nil {
		for _, subj := range p.Publish.Allow {
			name, ok := strings.CutPrefix(subj, IngestSubject+".")
			if ok && CheckPrincipalName(name) == nil {
				return subj, nil
			}
		}
	}
	return "", errors.New("this NATS connection is no desk principal's: connect with a desk's token")
}
