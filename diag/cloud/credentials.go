package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
)

// credentialChain is the Alibaba Cloud default credential chain in its
// documented order, built from the providers the SDK ships (the same ones
// github.com/aliyun/credentials-go has, already in the SDK's own
// interface, so no second module and no adapter):
//
//  1. environment: ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET
//     and, for STS, ALIBABA_CLOUD_SECURITY_TOKEN;
//  2. RRSA / OIDC: ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN,
//     ALIBABA_CLOUD_OIDC_TOKEN_FILE (AssumeRoleWithOIDC);
//  3. the Alibaba Cloud CLI profile, ~/.aliyun/config.json (the `current`
//     profile, or ALIBABA_CLOUD_PROFILE);
//  4. the credentials file, ~/.alibabacloud/credentials (or
//     ALIBABA_CLOUD_CREDENTIALS_FILE), profile "default";
//  5. the ECS instance RAM role, from the metadata service (unless
//     ALIBABA_CLOUD_ECS_METADATA_DISABLED=true);
//  6. ALIBABA_CLOUD_CREDENTIALS_URI, when set.
//
// A configured profile replaces the chain with steps 3 and 4 for that
// profile only: a user who names a profile means that one.
//
// Errors never carry a secret: the SDK's own messages can quote a whole
// malformed config file, so each step reports what it found in its own
// words.
type credentialChain struct {
	mu    sync.Mutex // the SDK's providers are not safe for concurrent use
	steps []credentialStep
}

type credentialStep struct {
	name     string
	provider credentials.CredentialsProvider // nil: the step does not apply
	skip     string                          // why it does not apply
	kind     func(*credentials.Credentials) string
	explain  func(error) string
}

// resolved is the credential of one run.
type resolved struct {
	id, secret, token string
	kind              string
}

func newCredentialChain(profile string) *credentialChain {
	c := &credentialChain{}
	if profile == "" {
		c.steps = append(c.steps, envStep(), oidcStep())
	}
	c.steps = append(c.steps, cliStep(profile), fileStep(profile))
	if profile == "" {
		c.steps = append(c.steps, ecsRoleStep())
		if os.Getenv("ALIBABA_CLOUD_CREDENTIALS_URI") != "" {
			c.steps = append(c.steps, uriStep())
		}
	}
	return c
}

// resolve walks the chain and returns the first credential found. The
// SDK's providers take no context (the metadata and STS calls have their
// own 1-15 s timeouts), so each runs in a goroutine and the run stops
// waiting at ctx's deadline.
func (c *credentialChain) resolve(ctx context.Context) (*resolved, error) {
	type answer struct {
		cc  *credentials.Credentials
		err error
	}
	var tried []string
	for _, st := range c.steps {
		if st.provider == nil {
			tried = append(tried, st.name+": "+st.skip)
			continue
		}
		ch := make(chan answer, 1)
		go func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			cc, err := st.provider.GetCredentials()
			ch <- answer{cc, err}
		}()
		var a answer
		select {
		case a = <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("credentials: %s did not answer before the deadline: %w", st.name, ctx.Err())
		}
		if a.err == nil && a.cc != nil && a.cc.AccessKeyId != "" && a.cc.AccessKeySecret != "" {
			return &resolved{id: a.cc.AccessKeyId, secret: a.cc.AccessKeySecret, token: a.cc.SecurityToken, kind: st.kind(a.cc)}, nil
		}
		why := "no AccessKey"
		if a.err != nil {
			why = st.explain(a.err)
		}
		tried = append(tried, st.name+": "+why)
	}
	return nil, fmt.Errorf("no Alibaba Cloud credentials found (%s); set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, "+
		"configure the aliyun CLI, or run with a RAM role (RRSA in a pod, the instance RAM role on ECS)", strings.Join(tried, "; "))
}

// provider is the run's credential for signing: static, so that concurrent
// requests share it safely.
func (r *resolved) provider() credentials.CredentialsProvider {
	if r.token != "" {
		return credentials.NewStaticSTSCredentialsProvider(r.id, r.secret, r.token)
	}
	return credentials.NewStaticAKCredentialsProvider(r.id, r.secret)
}

// redact removes the credential from text that may quote a request (the
// gateway echoes its string to sign; transport errors quote URLs).
func (r *resolved) redact(s string) string {
	if r == nil {
		return s
	}
	if i := strings.Index(s, "server string to sign is"); i >= 0 {
		s = strings.TrimSpace(s[:i]) + " (the gateway's string to sign is not shown: it quotes the credential)"
	}
	for _, v := range []struct{ secret, label string }{{r.secret, "<secret>"}, {r.token, "<security token>"}, {r.id, "<AccessKeyId>"}} {
		if len(v.secret) < 4 {
			continue
		}
		once := url.QueryEscape(v.secret)
		for _, form := range []string{v.secret, once, url.QueryEscape(once), strings.ReplaceAll(once, "+", "%20")} {
			s = strings.ReplaceAll(s, form, v.label)
		}
	}
	if len(s) > 500 {
		s = s[:500] + "..."
	}
	return s
}

func envStep() credentialStep {
	return credentialStep{
		name:     "environment",
		provider: credentials.NewEnvironmentVariableCredentialsProvider(),
		kind: func(cc *credentials.Credentials) string {
			if cc.SecurityToken != "" {
				return "environment variables ALIBABA_CLOUD_ACCESS_KEY_ID with ALIBABA_CLOUD_SECURITY_TOKEN (STS)"
			}
			return "environment variables ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET (AccessKey)"
		},
		explain: func(error) string {
			if os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_ID") == "" {
				return "ALIBABA_CLOUD_ACCESS_KEY_ID is not set"
			}
			return "ALIBABA_CLOUD_ACCESS_KEY_SECRET is not set"
		},
	}
}

func oidcStep() credentialStep {
	st := credentialStep{name: "RRSA/OIDC"}
	p, err := credentials.NewOIDCCredentialsProviderBuilder().Build()
	if err != nil {
		st.skip = "ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN and ALIBABA_CLOUD_OIDC_TOKEN_FILE are not all set"
		return st
	}
	role := os.Getenv("ALIBABA_CLOUD_ROLE_ARN")
	st.provider = p
	st.kind = func(*credentials.Credentials) string { return "RRSA/OIDC role " + role + " (AssumeRoleWithOIDC)" }
	st.explain = func(err error) string { return "AssumeRoleWithOIDC for " + role + ": " + stsCause(err) }
	return st
}

func cliStep(profile string) credentialStep {
	path := filepath.Join(home(), ".aliyun", "config.json")
	name := profile
	if name == "" {
		name = os.Getenv("ALIBABA_CLOUD_PROFILE")
	}
	return credentialStep{
		name:     "CLI profile (~/.aliyun/config.json)",
		provider: credentials.NewCLIProfileCredentialsProviderBuilder().WithProfileName(profile).Build(),
		kind: func(cc *credentials.Credentials) string {
			n := name
			if n == "" {
				n = cliCurrent(path)
			}
			return fmt.Sprintf("CLI profile %q in ~/.aliyun/config.json (%s)", n, modeName(cc.ProviderName))
		},
		explain: func(err error) string {
			if strings.EqualFold(os.Getenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED"), "true") {
				return "disabled by ALIBABA_CLOUD_CLI_PROFILE_DISABLED"
			}
			b, rerr := os.ReadFile(path)
			switch {
			case errors.Is(rerr, os.ErrNotExist):
				return "no such file"
			case rerr != nil:
				return "cannot be read"
			case !json.Valid(b):
				return "not valid JSON"
			}
			n := name
			if n == "" {
				n = cliCurrent(path)
			}
			if !cliHasProfile(b, n) {
				return fmt.Sprintf("no profile %q", n)
			}
			return fmt.Sprintf("profile %q: %s", n, stsCause(err))
		},
	}
}

func fileStep(profile string) credentialStep {
	path := os.Getenv("ALIBABA_CLOUD_CREDENTIALS_FILE")
	if path == "" {
		path = filepath.Join(home(), ".alibabacloud", "credentials")
	}
	name := profile
	if name == "" {
		name = os.Getenv("ALIBABA_CLOUD_PROFILE")
	}
	if name == "" {
		name = "default"
	}
	return credentialStep{
		name:     "credentials file (" + path + ")",
		provider: credentials.NewProfileCredentialsProviderBuilder().WithProfileName(profile).Build(),
		kind: func(cc *credentials.Credentials) string {
			return fmt.Sprintf("profile %q in %s (%s)", name, path, modeName(cc.ProviderName))
		},
		explain: func(err error) string {
			if _, serr := os.Stat(path); errors.Is(serr, os.ErrNotExist) {
				return "no such file"
			}
			// The INI parser quotes the offending line, which may hold a
			// key: say only which stage failed.
			msg := err.Error()
			for _, c := range []struct{ prefix, says string }{
				{"ERROR: Can not open file", "not a readable INI file"},
				{"ERROR: Can not load section", fmt.Sprintf("no profile %q", name)},
				{"ERROR: Can not find credential type", fmt.Sprintf("profile %q has no type", name)},
				{"ERROR: Failed to get value", fmt.Sprintf("profile %q lacks a key", name)},
				{"ERROR: Value can't be empty", fmt.Sprintf("profile %q has an empty key", name)},
			} {
				if strings.HasPrefix(msg, c.prefix) {
					return c.says
				}
			}
			var se *sdkerrors.ServerError
			if errors.As(err, &se) {
				return fmt.Sprintf("profile %q: %s", name, stsCause(err))
			}
			return fmt.Sprintf("profile %q could not be used", name)
		},
	}
}

func ecsRoleStep() credentialStep {
	st := credentialStep{name: "ECS instance RAM role (metadata service)"}
	p, err := credentials.NewECSRAMRoleCredentialsProviderBuilder().Build()
	if err != nil {
		st.skip = "disabled by ALIBABA_CLOUD_ECS_METADATA_DISABLED"
		return st
	}
	st.provider = p
	st.kind = func(*credentials.Credentials) string { return "ECS instance RAM role (metadata service)" }
	st.explain = func(err error) string { return "metadata service 100.100.100.200: " + stsCause(err) }
	return st
}

func uriStep() credentialStep {
	st := credentialStep{name: "ALIBABA_CLOUD_CREDENTIALS_URI"}
	p, err := credentials.NewURLCredentialsProviderBuilderBuilder().Build()
	if err != nil {
		st.skip = "not set"
		return st
	}
	st.provider = p
	st.kind = func(*credentials.Credentials) string { return "credentials URI (ALIBABA_CLOUD_CREDENTIALS_URI)" }
	st.explain = func(err error) string { return stsCause(err) }
	return st
}

// stsCause says why a provider failed without quoting what it read: an
// STS or metadata answer by its code, anything else by its first line,
// cut short.
func stsCause(err error) string {
	var se *sdkerrors.ServerError
	if errors.As(err, &se) {
		var body struct{ Code, Message string }
		if json.Unmarshal([]byte(se.Message()), &body) == nil && body.Code != "" {
			return fmt.Sprintf("%s (HTTP %d): %s", body.Code, se.HttpStatus(), body.Message)
		}
		return fmt.Sprintf("HTTP %d", se.HttpStatus())
	}
	var ce *sdkerrors.ClientError
	if errors.As(err, &ce) {
		return ce.ErrorCode()
	}
	s := firstLine(err.Error())
	if i := strings.IndexAny(s, "{="); i >= 0 {
		s = s[:i] + "..."
	}
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

func home() string {
	if h, err := os.UserHomeDir(); err == nil {
		return h
	}
	return "~"
}

// cliCurrent is the `current` profile name of the CLI config (only the
// name is read).
func cliCurrent(path string) string {
	var c struct {
		Current string `json:"current"`
	}
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &c)
	}
	if c.Current == "" {
		return "default"
	}
	return c.Current
}

func cliHasProfile(b []byte, name string) bool {
	var c struct {
		Profiles []struct {
			Name string `json:"name"`
		} `json:"profiles"`
	}
	if json.Unmarshal(b, &c) != nil {
		return false
	}
	for _, p := range c.Profiles {
		if p.Name == name {
			return true
		}
	}
	return false
}

// modeName names the SDK provider a profile resolved to.
func modeName(providerName string) string {
	inner := providerName[strings.LastIndex(providerName, "/")+1:]
	switch inner {
	case "static_ak":
		return "AccessKey"
	case "static_sts":
		return "STS token"
	case "ram_role_arn":
		return "RAM role ARN"
	case "ecs_ram_role":
		return "ECS instance RAM role"
	case "oidc_role_arn":
		return "OIDC role"
	case "":
		return "unknown mode"
	}
	return inner
}
